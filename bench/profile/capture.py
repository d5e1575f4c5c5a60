"""Profiling one cell: build it as `bench run` does, capture a torch.profiler trace, write its summary.

The trace is captured with a wait/warmup/active schedule (profiler start-up and first-call work fall in
the skipped steps) and written by `tensorboard_trace_handler` to
`<out>/<hardware>/traces/<model>-<form>-b<batch>-<precision>/`; the same `*.pt.trace.json` opens in
TensorBoard (torch-tb-profiler), Perfetto (ui.perfetto.dev) or chrome://tracing. Profiled times carry the
profiler's own overhead: use `bench run` for timings, this for what runs. Launches are counted and
categorized by `bench.measure.ops`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import pandas as pd
import torch
from torch.profiler import ProfilerActivity, profile, record_function, schedule, tensorboard_trace_handler

from bench.results.table_writer import markdown_table
from bench.measure.ops import summarize
from bench.models import workload
from bench.results.cell import Cell

@dataclass(frozen=True)
class ProfileConfig:
    """One profiled cell plus the schedule. `active` steps are averaged into per-forward figures."""

    cell: Cell
    device: str = "auto"
    wait: int = 1
    warmup: int = 2
    active: int = 3
    top: int = 20
    seed: int = 0
    threads: int | None = None
    """torch CPU threads, as a sweep cell sets them (`[run] num_threads`); None = CPU_THREADS on the CPU,
    torch's default on CUDA. Recorded in kernel_summary.md and kernel_counts.csv."""


CPU_THREADS = 1
"""Default CPU threads: the committed CPU runs and the CI sweep use one thread; torch's default (every
core) on a shared machine made the deploy form look 2.7x slower (2047 vs 764 ms) while one thread gave
94 vs 150 ms. Pass --threads to profile another setting."""


profile_table = partial(markdown_table, digits=4)
"""Profile tables: floats to 4 significant figures."""


def pin_threads(config: ProfileConfig, device: torch.device) -> int:
    """Apply the thread policy; returns the thread count in force."""
    threads = config.threads if config.threads is not None else (CPU_THREADS if device.type == "cpu" else None)
    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def resolve_device(name: str) -> torch.device:
    """As `bench run`: 'auto' -> cuda when torch sees a GPU, else cpu; 'cuda' without one raises."""
    from bench.measure.env import resolve_device as resolve

    return torch.device(resolve(name))


def trace_name(cell: Cell) -> str:
    """`<model>-<form>-b<batch>-<precision>`, plus non-default axes (memory format, mode, resolution)."""
    name = f"{cell.model.replace(':', '_')}-{cell.form}-b{cell.batch_size}-{cell.precision}"
    extras = [cell.memory_format if cell.memory_format != "contiguous" else "",
              cell.mode if cell.mode != "infer" else "",
              f"r{cell.resolution}" if cell.resolution != 224 else ""]
    return "-".join([name, *(e for e in extras if e)])


def build(cell: Cell, device: torch.device, seed: int = 0) -> tuple[torch.nn.Module, object]:
    """The cell's model (deploy form via bench.reparam.to_deploy) and its zero-arg call, as `bench run`."""
    from bench.models.build import build_form

    model = workload.prepare_model(build_form(cell.model, cell.form, seed), cell, device)
    x = workload.make_input(cell, device, seed=seed)
    return model, workload.make_fn(model, x, cell, device)


def capture(fn, device: torch.device, config: ProfileConfig, trace_dir: Path) -> profile:
    """Run wait + warmup + active steps under the profiler; the handler writes the active window's trace."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    steps = config.wait + config.warmup + config.active
    trace_dir.mkdir(parents=True, exist_ok=True)
    with profile(activities=activities,
                 schedule=schedule(wait=config.wait, warmup=config.warmup, active=config.active, repeat=1),
                 on_trace_ready=tensorboard_trace_handler(str(trace_dir))) as prof:
        for _ in range(steps):
            with record_function("forward"):
                fn()
            workload.synchronize(device)
            prof.step()
    return prof


@dataclass
class ProfileResult:
    """A profiled cell: where its trace went and its tables (per forward)."""

    cell: Cell
    device: str
    trace_dir: Path
    top: pd.DataFrame
    categories: pd.DataFrame
    num_threads: int = 0
    """torch CPU threads in force while profiling (ProfileConfig.threads)."""

    @property
    def unit(self) -> str:
        return "CUDA kernels" if self.device.startswith("cuda") else "top-level ATen ops"


def traces_for(out: Path, device: torch.device, cell) -> Path:
    """`bench.results.layout.traces_dir` of this device's hardware slug (the one `bench run` uses)."""
    from bench.results.layout import traces_dir
    from bench.measure.env import hardware_slug

    return traces_dir(out, hardware_slug(device.type), trace_name(cell))


def profile_cell(config: ProfileConfig, out: Path) -> ProfileResult:
    """Build, profile and summarize one cell; writes the trace and kernel_summary.{csv,md}."""
    device = resolve_device(config.device)
    from bench.measure.precision_switches import apply_precision_settings

    apply_precision_settings(config.cell.precision)
    previous = torch.get_num_threads()
    try:
        threads = pin_threads(config, device)
        trace_dir = traces_for(out, device, config.cell)
        _model, fn = build(config.cell, device, config.seed)
        prof = capture(fn, device, config, trace_dir)
        top, categories = summarize(prof, config.active, device.type == "cuda", config.top)
        result = ProfileResult(config.cell, str(device), trace_dir, top, categories, threads)
        write_summary(result)
    finally:
        torch.set_num_threads(previous)
    return result


def write_summary(result: ProfileResult) -> None:
    result.top.to_csv(result.trace_dir / "kernel_summary.csv", index=False)
    result.categories.to_csv(result.trace_dir / "categories.csv", index=False)
    text = [f"# Profile: {result.cell.label()} on {result.device}, {result.num_threads} torch CPU thread(s)", "",
            f"Counted per forward: {result.unit}. Times include profiler overhead; use `bench run` for "
            "timings.", "", "## By category", "", profile_table(result.categories), "## Top by time", "",
            profile_table(result.top)]
    (result.trace_dir / "kernel_summary.md").write_text("\n".join(text), encoding="utf-8")


def compare_forms(config: ProfileConfig, out: Path) -> tuple[pd.DataFrame, Path]:
    """Profile the training and the deploy form of the cell; write kernel_counts.{csv,md} side by side."""
    results = {form: profile_cell(replace(config, cell=replace(config.cell, form=form)), out)
               for form in ("train", "deploy")}
    train, deploy = results["train"], results["deploy"]
    table = train.categories.merge(deploy.categories, on="category", suffixes=("_train", "_deploy"))
    table = table[["category", "count_per_forward_train", "count_per_forward_deploy",
                   "time_ms_per_forward_train", "time_ms_per_forward_deploy"]]
    cell = config.cell
    table.insert(0, "unit", train.unit)
    for position, (key, value) in enumerate((("model", cell.model), ("batch_size", cell.batch_size),
                                             ("precision", cell.precision), ("resolution", cell.resolution),
                                             ("device", train.device),
                                             ("num_threads", train.num_threads))):
        table.insert(position, key, value)
    name = trace_name(replace(cell, form="train")).replace("-train-", "-train-vs-deploy-", 1)
    folder = train.trace_dir.parent / name
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "kernel_counts.csv", index=False)
    (folder / "kernel_counts.md").write_text(
        f"# {cell.model}: {train.unit} per forward, training vs deploy form\n\n"
        f"batch {cell.batch_size}, {cell.precision}, {cell.resolution}x{cell.resolution}, {train.device}\n\n"
        + profile_table(table.drop(columns=["model", "batch_size", "precision", "resolution", "device", "num_threads",
                                  "unit"])),
        encoding="utf-8")
    return table, folder
