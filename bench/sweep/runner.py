"""Run a sweep: config -> cells -> executor -> one `Result` row per cell, appended as each cell ends.

Resume: rows go through `bench.results.io.RunWriter`, which appends atomically after every cell; the
run id is derived from the config (`SweepConfig.run_id`), so re-running the same command opens the same
`results/<hardware>/<run_id>/` folder, and every cell whose key is already there (whatever its status) is
not run again (`retry_failed` re-runs 'error' and 'timeout' cells). A killed sweep loses at most the cell
in flight. Pass another `run_id` to start afresh.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from bench.results.schema import COLUMNS, Result
from bench.sweep.cells import Cell, expand
from bench.sweep.config import SweepConfig, check_results_root, check_run_id, validate
from bench.sweep.executor import Executor, LocalExecutor
from bench.sweep.progress import Progress
from bench.sweep.protocol import CellOutcome, CellSpec

IDENTITY = ("run_id", "hardware", "device", "status", "error", "skip_reason", "git_sha", "started_at",
            "duration_s")


class DeviceError(RuntimeError):
    """The requested device is not there (e.g. --device cuda on a machine without CUDA)."""


def resolve_device(requested: str) -> str:
    """'auto' -> 'cuda' if torch sees a GPU, else 'cpu'; 'cuda' without CUDA is an error."""
    import torch

    available = torch.cuda.is_available()
    if requested == "cuda" and not available:
        raise DeviceError("device 'cuda' requested but torch.cuda.is_available() is False "
                          f"(torch {torch.__version__}, CUDA build: {torch.version.cuda}); "
                          "use --device cpu or --device auto")
    if requested == "auto":
        return "cuda" if available else "cpu"
    return requested


@dataclass
class SweepPlan:
    config: SweepConfig
    device: str
    hardware: str
    run_id: str
    run_dir: Path
    cells: list[Cell]
    git_sha: Optional[str] = None

    def spec(self, cell: Cell) -> CellSpec:
        kinds = tuple(f.kind for f in self.config.faults if f.applies(cell.axes()))
        return CellSpec(cell=cell, device=self.device, seed=self.config.seed,
                        num_threads=self.config.num_threads, timing=dict(self.config.timing), faults=kinds)


def hardware_slug(device: str) -> str:
    """Folder name of the hardware that runs the cells: the GPU's slug, or the CPU's for device 'cpu'
    (even on a machine with a GPU)."""
    from bench.measure.env import hardware_slug as slug

    return slug(device)


def plan(config: SweepConfig, out: Path | str = "results", run_id: Optional[str] = None,
         known_models: Optional[Sequence[str]] = None) -> SweepPlan:
    """Validate everything and lay out the run; nothing is run or written."""
    validate(config, known_models)
    device = resolve_device(config.device)
    hardware = hardware_slug(device)
    rid = config.run_id(device) if run_id is None else check_run_id(run_id)
    check_results_root(out)
    return SweepPlan(config=config, device=device, hardware=hardware, run_id=rid,
                     run_dir=Path(out) / hardware / rid, cells=expand(config, device))


def cell_load() -> dict[str, Any]:
    from bench.measure.env import machine_load

    return machine_load()


def make_row(plan_: SweepPlan, cell: Cell, outcome: CellOutcome, started: Optional[float],
             duration_s: Optional[float]) -> Result:
    """Identity and axes from the parent (authoritative), measured fields from the cell."""
    measured = {k: v for k, v in outcome.fields.items() if k in COLUMNS and k not in IDENTITY}
    measured.update(cell_load() if started is not None else {})
    stamp = (_dt.datetime.fromtimestamp(started, tz=_dt.timezone.utc).isoformat(timespec="seconds")
             if started is not None else None)
    return Result(run_id=plan_.run_id, hardware=plan_.hardware, device=plan_.device, status=outcome.status,
                  error=outcome.error, skip_reason=cell.skip_reason or None, git_sha=plan_.git_sha, started_at=stamp, duration_s=duration_s,
                  **cell.axes(), **measured)


@dataclass
class SweepSummary:
    run_dir: Path
    counts: dict[str, int] = field(default_factory=dict)
    resumed: int = 0


def _open_writer(plan_: SweepPlan) -> Any:
    from bench.measure.env import run_environment
    from bench.results.guard import check_run_folder
    from bench.results.io import RunWriter

    check_run_folder(plan_.run_dir)
    writer = RunWriter(plan_.run_dir)
    env = run_environment()
    if not (plan_.run_dir / "env.json").exists():
        writer.write_env(env)
    plan_.git_sha = plan_.git_sha or env.get("git_sha")
    return writer


def run_sweep(plan_: SweepPlan, executor: Optional[Executor] = None,
              retry_failed: bool = False) -> SweepSummary:
    """Run every unfinished cell of the plan, appending one row per cell; returns counts by status.

    `retry_failed`: cells that ended as 'error' or 'timeout' count as unfinished and run again (their new
    row replaces the old one); 'oom' stays finished, it would not fit the next time either.
    """
    writer = _open_writer(plan_)
    finished = {tuple(k) for k in writer.finished_keys(retry_failed=retry_failed)}
    pending = [c for c in plan_.cells if c.key() not in finished]
    to_run = [c for c in pending if not c.skip_reason]
    executor = executor or LocalExecutor.for_device(plan_.device, plan_.config.cell_timeout_s)
    progress = Progress(len(plan_.cells), len(to_run), len(getattr(executor, "slots", [None])))
    summary = SweepSummary(run_dir=plan_.run_dir, resumed=len(plan_.cells) - len(pending))
    counts: Counter = Counter()
    for cell in plan_.cells:
        if cell.key() in finished:
            progress.already_done(cell)
    for cell in pending:
        if cell.skip_reason:
            row = make_row(plan_, cell, CellOutcome(status="skipped"), None, None)
            writer.append(row, [])
            counts[row.status] += 1
            progress.finish(row, ran=False)

    def on_start(spec: CellSpec, slot: int) -> None:
        progress.start(spec.cell)

    def on_done(spec: CellSpec, outcome: CellOutcome, started: float, duration: float) -> None:
        row = make_row(plan_, spec.cell, outcome, started, duration)
        writer.append(row, outcome.samples_ms)
        counts[row.status] += 1
        progress.finish(row, ran=True)

    if not pending:
        print(f"nothing to run: all {len(plan_.cells)} cells are already in {plan_.run_dir} (a resumed "
              "run); pass --run-id NAME to measure them again")
    executor.run([plan_.spec(c) for c in to_run], on_start, on_done)
    progress.end(dict(counts))
    summary.counts = dict(counts)
    return summary
