"""Run a sweep: config -> cells -> units of work -> executor -> one `Result` row per cell and one
`Speedup` row per train/deploy pair, written as each unit ends.

A unit is the pair of one inference setting (both forms timed side by side in one process) or a lone
cell (`bench.sweep.protocol.group_units`). Resume: rows go through `bench.results.io.RunWriter`, which
writes every unit's files atomically; the run id is derived from the config (`SweepConfig.run_id`), so
re-running the same command opens the same `results/<hardware>/<run_id>/` folder, and every cell whose
key is already there (whatever its status) is not run again (`retry_failed` re-runs 'error' and 'timeout'
cells, and a pair as a whole). A killed sweep loses at most the unit in flight. Pass another `run_id` to
start afresh.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

from bench.results.layout import ENV_FILE, results_root, run_dir_for
from bench.results.schema import COLUMNS, INT8_PAIR_COLUMNS, PAIR_AXES, Result, Speedup
from bench.results.cell import Cell
from bench.sweep.plan.cells import expand
from bench.sweep.plan.config import SweepConfig, check_results_root, check_run_id, validate
from bench.sweep.local.executor import Executor, LocalExecutor
from bench.sweep.driver.progress import Progress
from bench.sweep.protocol import CellOutcome, UnitOutcome, UnitSpec, group_units
from bench.sweep.driver.verdict import RunVerdict, judge_rows

if TYPE_CHECKING:
    from bench.results.io import RunWriter

IDENTITY = ("run_id", "hardware", "device", "status", "error", "skip_reason", "git_sha", "started_at",
            "duration_s", "model_source", "model_source_sha256")


@dataclass
class SweepPlan:
    config: SweepConfig
    device: str
    hardware: str
    run_id: str
    run_dir: Path
    cells: list[Cell]
    git_sha: Optional[str] = None
    sources: dict[str, tuple[Optional[str], Optional[str]]] = field(default_factory=dict)
    """Model name -> (model_source, model_source_sha256) of its rows, read when the sweep is planned."""

    def unit_spec(self, cells: Sequence[Cell]) -> UnitSpec:
        faults = tuple(tuple(f.kind for f in self.config.faults if f.applies(c.axes())) for c in cells)
        return UnitSpec(cells=tuple(cells), device=self.device, seed=self.config.seed,
                        num_threads=self.config.num_threads, timing=self.config.timing, faults=faults)


def plan(config: SweepConfig, out: Path | str | None = None, run_id: Optional[str] = None,
         known_models: Optional[Sequence[str]] = None) -> SweepPlan:
    """Validate everything and lay out the run on this machine's device; nothing is run or written."""
    from bench.measure.env import hardware_slug, resolve_device

    validate(config, known_models)
    device = resolve_device(config.device)
    return lay_out(config, device, hardware_slug(device), out, run_id)


def lay_out(config: SweepConfig, device: str, hardware: str, out: Path | str | None = None,
            run_id: Optional[str] = None) -> SweepPlan:
    """The plan of a validated config on `device` of `hardware`: this machine's (`plan`) or a Ray
    cluster's hardware kind (`bench.sweep.ray.sweep.plan_kinds`), so both lay a run out the same way."""
    out = results_root() if out is None else out
    rid = config.run_id(device) if run_id is None else check_run_id(run_id)
    check_results_root(out)
    return SweepPlan(config=config, device=device, hardware=hardware, run_id=rid,
                     run_dir=run_dir_for(out, hardware, rid), cells=expand(config, device),
                     sources={m: model_provenance(m) for m in config.values("model")})


def model_provenance(name: str) -> tuple[Optional[str], Optional[str]]:
    """(model_source, model_source_sha256) of a model (`bench.models.ModelInfo.provenance`); (None, None)
    for a name the registry cannot resolve (a plan given its own `known_models`)."""
    from bench.models import info

    try:
        return info(name).provenance
    except (ValueError, ImportError, TypeError):
        return None, None


def cell_load() -> dict[str, Any]:
    from bench.measure.env import machine_load

    return machine_load()


def make_row(plan_: SweepPlan, cell: Cell, outcome: CellOutcome, started: Optional[float],
             duration_s: Optional[float]) -> Result:
    """Identity and axes from the parent (authoritative), measured fields from the cell. A measured field
    that is not a column raises: a misspelt name must not vanish from the tables."""
    unknown = [repr(k) for k in outcome.fields if k not in COLUMNS]
    if unknown:
        verb = "is not a column" if len(unknown) == 1 else "are not columns"
        raise ValueError(f"measured field {', '.join(unknown)} {verb} of Result (bench.results.schema): fix "
                         "the name or add the column there")
    measured = {k: v for k, v in outcome.fields.items() if k not in IDENTITY}
    if started is not None:  # a remote worker sends its own machine's load; else it is this machine's
        measured = {**cell_load(), **measured}
    stamp = (_dt.datetime.fromtimestamp(started, tz=_dt.timezone.utc).isoformat(timespec="seconds")
             if started is not None else None)
    source, digest = plan_.sources.get(cell.model) or model_provenance(cell.model)
    return Result(run_id=plan_.run_id, hardware=plan_.hardware, device=plan_.device, status=outcome.status,
                  error=outcome.error, skip_reason=cell.skip_reason or None, git_sha=plan_.git_sha, started_at=stamp, duration_s=duration_s,
                  model_source=source, model_source_sha256=digest, **cell.axes(), **measured)


@dataclass
class SweepSummary:
    """`counts`: this invocation's rows by status; `verdict`: every row of the run folder, judged."""

    run_dir: Path
    counts: dict[str, int] = field(default_factory=dict)
    resumed: int = 0
    verdict: RunVerdict = field(default_factory=lambda: judge_rows([]))


def _open_writer(plan_: SweepPlan, env: Optional[dict[str, Any]] = None) -> Any:
    """`env`: the fingerprint of the machine that runs the units (a remote node's); default this one's.
    A folder holding another run's cells, or cells of other settings (seed; threads: the config's, else
    this machine's torch default), is refused before anything is measured (`check_run_folder`)."""
    from bench.measure.env import run_environment
    from bench.results.guard import check_run_folder
    from bench.results.io import RunWriter

    local, env = env is None, run_environment() if env is None else env
    # what the cells' rows will record: the config's threads, else the torch default of this machine, where
    # the workers inherit our environment (Ray sets OMP_NUM_THREADS per task, so a node's default is unknown)
    threads = plan_.config.num_threads or (env.get("torch_num_threads") if local else None)
    check_run_folder(plan_.run_dir, run=(plan_.run_id, plan_.hardware),
                     settings={"seed": plan_.config.seed, **({"num_threads": threads} if threads else {})})
    writer = RunWriter(plan_.run_dir)
    if not (plan_.run_dir / ENV_FILE).exists():
        writer.write_env(env)
    plan_.git_sha = plan_.git_sha or env.get("git_sha")
    return writer


def speedup_row(plan_: SweepPlan, rows: Sequence[Result], outcome: UnitOutcome,
                started: Optional[float], duration_s: Optional[float]) -> Speedup:
    """The pair's row of speedups.parquet: status ok only if both rows are ok (the gate passed), and
    no speedup otherwise (a mismatched deploy form computes something else)."""
    train, deploy = (next(r for r in rows if r.form == form) for form in ("train", "deploy"))
    bad = [r for r in (deploy, train) if r.status != "ok"]
    status = bad[0].status if bad else "ok"
    timed = outcome.pair.row_fields(agreed=status == "ok") if outcome.pair is not None else {}
    stamp = rows[0].started_at
    return Speedup(run_id=plan_.run_id, hardware=plan_.hardware, device=plan_.device, status=status,
                   error=bad[0].error if bad else None, git_sha=plan_.git_sha, started_at=stamp,
                   duration_s=duration_s, paired=True,
                   **{a: getattr(train, a) for a in PAIR_AXES}, **timed,
                   latency_ms_median_train=train.latency_ms_median, latency_ms_median_deploy=deploy.latency_ms_median,
                   max_rel_err=deploy.max_rel_err, tolerance=deploy.tolerance,
                   **{f"{key}_{row.form}": getattr(row, column) for key, column in INT8_PAIR_COLUMNS.items()
                      for row in (train, deploy)})


def _pending_units(plan_: SweepPlan, finished: set) -> list[tuple[Cell, ...]]:
    """Units with at least one unfinished cell: a pair runs again as a whole (both rows replaced), since
    its speedup needs both forms timed side by side."""
    runnable = [c for c in plan_.cells if not c.skip_reason]
    return [u for u in group_units(runnable) if any(c.key() not in finished for c in u)]


def _unit_rows(plan_: SweepPlan, spec: UnitSpec, outcome: UnitOutcome, started: float,
               duration: float) -> tuple[list[Result], Optional[Speedup]]:
    """A finished unit's rows (its duration shared by its cells) and a pair's speedup row; an ok pair's
    speedup is copied onto both form rows."""
    share = duration / len(spec.cells)
    rows = [make_row(plan_, cell, out, started, share) for cell, out in zip(spec.cells, outcome.cells)]
    pair = speedup_row(plan_, rows, outcome, started, duration) if spec.is_pair else None
    if pair is not None and pair.status == "ok":
        rows = [replace(r, speedup_median=pair.speedup_median, speedup_ci_low=pair.speedup_ci_low,
                        speedup_ci_high=pair.speedup_ci_high) for r in rows]
    return rows, pair


def _settle_unrun(plan_: SweepPlan, writer: RunWriter, progress: Progress, finished: set, rerun: set) -> Counter:
    """The cells that do not run now: those already in the folder count as done, and a skipped cell
    without a row gets its skipped row. Returns the rows written, by status."""
    counts: Counter = Counter()
    for cell in plan_.cells:
        if cell.key() in finished and cell.key() not in rerun:
            progress.already_done(cell)
    for cell in plan_.cells:
        if cell.skip_reason and cell.key() not in finished:
            row = make_row(plan_, cell, CellOutcome(status="skipped"), None, None)
            writer.write_unit([(row, [])])
            counts[row.status] += 1
            progress.finish(row, ran=False)
    return counts


def run_sweep(plan_: SweepPlan, executor: Optional[Executor] = None,
              retry_failed: bool = False, isolation: str = "model", prestarted: Any = None,
              env: Optional[dict[str, Any]] = None) -> SweepSummary:
    """Run every unfinished unit of the plan (a pair or a lone cell), writing its rows (and the pair's
    speedup row) as each unit ends; returns counts by status.

    `retry_failed`: cells that ended as 'error' or 'timeout' count as unfinished and run again (their new
    row replaces the old one; a pair runs again as a whole); 'oom' stays finished, it would not fit the
    next time either. `isolation`: see `bench.sweep.local.executor.ISOLATIONS`. `prestarted`: a
    `bench.sweep.local.executor.Worker.prestart()` for the default executor to adopt (killed if unused).
    `env`: the environment fingerprint for a new run's `env.json` when the units run on another machine.
    """
    writer = _open_writer(plan_, env)
    finished = {tuple(k) for k in writer.finished_keys(retry_failed=retry_failed)}
    units = _pending_units(plan_, finished)
    rerun = {c.key() for u in units for c in u}
    if executor is None:
        executor = LocalExecutor.for_device(plan_.device, plan_.config.cell_timeout_s, isolation,
                                            env=_worker_env(plan_, units), prestarted=prestarted)
    elif prestarted is not None:
        prestarted.kill()
    progress = Progress(len(plan_.cells), len(rerun), len(executor.slots))
    summary = SweepSummary(run_dir=plan_.run_dir, resumed=sum(1 for c in plan_.cells if c.key() in finished))
    counts = _settle_unrun(plan_, writer, progress, finished, rerun)

    def on_start(spec: UnitSpec, slot: int) -> None:
        progress.start(spec.cells[0], label=executor.tag + spec.label())

    def on_done(spec: UnitSpec, outcome: UnitOutcome, started: float, duration: float) -> None:
        rows, pair = _unit_rows(plan_, spec, outcome, started, duration)
        writer.write_unit([(row, out.samples_ms) for row, out in zip(rows, outcome.cells)], pair)
        for row in rows:
            counts[row.status] += 1
            progress.finish(row, ran=True)

    if not units and not counts:
        print(f"nothing to run: all {len(plan_.cells)} cells are already in {plan_.run_dir} (a resumed "
              "run); pass --run-id NAME to measure them again")
    try:
        executor.run([plan_.unit_spec(u) for u in units], on_start, on_done)
    finally:
        writer.flush()
        if prestarted is not None and prestarted.alive():
            prestarted.kill()
    progress.end(dict(counts))
    summary.counts = dict(counts)
    summary.verdict = judge_rows(writer.rows())
    return summary


def _worker_env(plan_: SweepPlan, units: Sequence[tuple[Cell, ...]]) -> dict[str, str]:
    """torch.compile units get an inductor cache of their own run (in the user's cache directory, never in
    the run folder: `bench.measure.compile_cache`), so no compile is warmed by another run's cache and
    `compile_cache_cold` means what it says."""
    from bench.measure.compile_cache import INDUCTOR_RUNTIMES, compile_cache_env

    if not any(u[0].runtime in INDUCTOR_RUNTIMES for u in units):
        return {}
    return compile_cache_env(plan_.run_dir)
