"""`bench profile`: a torch.profiler trace and a kernel summary for one cell, in a run of its own.

    bench profile --model repvgg_a0 --form deploy --batch 64 [--precision fp16] [--compare-forms]

The trace is captured with a wait/warmup/active schedule (profiler start-up and first-call work fall in
the skipped steps) and written by `tensorboard_trace_handler` to
`<out>/<hardware>/traces/<model>-<form>-b<batch>-<precision>/`; the same `*.pt.trace.json` opens in
TensorBoard (torch-tb-profiler), Perfetto (ui.perfetto.dev) or chrome://tracing. Profiled times carry the
profiler's own overhead: use `bench run` for timings, this for what runs.

What is counted per forward: on CUDA every GPU kernel; on the CPU every top-level ATen operator (an
`aten::` op not called by another one: `aten::conv2d`, `aten::batch_norm`, `aten::add`, ...), which is
what a launch is there. `--compare-forms` profiles both forms and writes the side-by-side counts that
explain a re-parameterization speedup (fewer, larger convolutions; no BN; no branch additions).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import pandas as pd
import torch
from torch.profiler import ProfilerActivity, profile, record_function, schedule, tensorboard_trace_handler

from bench.compare.table import markdown_table
from bench.sweep import workload
from bench.sweep.axes import CHOICES
from bench.sweep.cells import Cell

CATEGORIES: tuple[str, ...] = ("convolution", "batchnorm", "elementwise", "other")
OP_CATEGORY: dict[str, str] = {
    "aten::conv2d": "convolution", "aten::convolution": "convolution", "aten::_convolution": "convolution",
    "aten::batch_norm": "batchnorm", "aten::native_batch_norm": "batchnorm",
    "aten::add": "elementwise", "aten::add_": "elementwise", "aten::relu": "elementwise",
    "aten::relu_": "elementwise", "aten::mul": "elementwise", "aten::mul_": "elementwise",
    "aten::sigmoid": "elementwise", "aten::hardtanh": "elementwise", "aten::hardtanh_": "elementwise",
    "aten::clamp_min": "elementwise", "aten::silu": "elementwise", "aten::silu_": "elementwise",
}
"""Top-level ATen operator -> category (anything else: 'other')."""
KERNEL_PATTERNS: tuple[tuple[str, re.Pattern], ...] = (
    ("batchnorm", re.compile(r"batch_?norm|bn_fw|bn_bw|bn_infer", re.I)),
    ("convolution", re.compile(r"conv|implicit_gemm|fprop|dgrad|wgrad|winograd|cudnn", re.I)),
    ("elementwise", re.compile(r"elementwise|vectorized|relu|add|mul|clamp|threshold|sigmoid", re.I)),
)
"""GPU kernel name -> category, first match wins, for kernels whose launching op is not linked. No bare
"xmma": cuBLAS GEMMs (the linear head, backward matmuls) are `sm90_xmma_gemm_*` too; cuDNN's xmma kernels
also say fprop/dgrad/wgrad/implicit_gemm."""


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


_md = partial(markdown_table, digits=4)
"""Profile tables: floats to 4 significant figures."""


def pin_threads(config: ProfileConfig, device: torch.device) -> int:
    """Apply the thread policy; returns the thread count in force."""
    threads = config.threads if config.threads is not None else (CPU_THREADS if device.type == "cpu" else None)
    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def resolve_device(name: str) -> torch.device:
    """As `bench run`: 'auto' -> cuda when torch sees a GPU, else cpu; 'cuda' without one raises."""
    from bench.sweep.runner import resolve_device as resolve

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
    from bench.models import create
    from bench.reparam import to_deploy

    torch.manual_seed(seed)
    model = create(cell.model, deploy=False).eval()
    if cell.form == "deploy":
        model = to_deploy(model)
    model = workload.prepare_model(model, cell, device)
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


def _root_op(event):
    """The outermost `aten::` ancestor of an event (itself if none above it), or None outside any op."""
    root, node = None, event
    while node is not None:
        if node.name.startswith("aten::"):
            root = node
        node = node.cpu_parent
    return root


def _is_kernel(event) -> bool:
    """A device activity (kernel, memcpy, memset). Not a `record_function` range: kineto mirrors those on
    the GPU timeline (gpu_user_annotation, device type CUDA) spanning every kernel inside them."""
    return event.device_type != torch.autograd.DeviceType.CPU and not getattr(event, "is_user_annotation", False)


def kernel_name_category(name: str) -> str:
    """Category of a GPU kernel from its name alone (cuDNN/ATen naming), first pattern that matches."""
    return next((cat for cat, pattern in KERNEL_PATTERNS if pattern.search(name)), "other")


def _launcher_categories(events) -> dict[str, str]:
    """Kernel name -> category of the ATen op that launched it (via the profiler's kernel links)."""
    votes: dict[str, Counter] = defaultdict(Counter)
    for e in events:
        if _is_kernel(e) or not e.kernels:
            continue
        root = _root_op(e)
        if root is not None and root.name in OP_CATEGORY:
            for kernel in e.kernels:
                votes[kernel.name][OP_CATEGORY[root.name]] += 1
    return {name: counter.most_common(1)[0][0] for name, counter in votes.items()}


def launches(events, on_gpu: bool) -> list[tuple[str, str, float]]:
    """(name, category, time_ms) per launch: GPU kernels on CUDA, top-level ATen ops on the CPU.

    A kernel's category is that of the ATen op that launched it when the profiler links them, else
    read from its name. CPU time of a top-level op is the self time of everything under it.
    """
    events = list(events)
    if on_gpu:
        launched_by = _launcher_categories(events)
        return [(e.name, launched_by.get(e.name) or kernel_name_category(e.name),
                 e.time_range.elapsed_us() / 1e3) for e in events if _is_kernel(e)]
    self_ms: dict[int, float] = defaultdict(float)
    roots = {}
    for e in events:
        if _is_kernel(e):
            continue
        root = _root_op(e)
        if root is not None:
            roots[id(root)] = root
            self_ms[id(root)] += e.self_cpu_time_total / 1e3
    return [(r.name, OP_CATEGORY.get(r.name, "other"), self_ms[key]) for key, r in roots.items()]


def summarize(prof: profile, active: int, on_gpu: bool, top: int = 20) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(top launches by time, per-category counts and times), both per forward (divided by `active`)."""
    rows = pd.DataFrame(launches(prof.events(), on_gpu), columns=["name", "category", "time_ms"])
    by_name = rows.groupby(["name", "category"], as_index=False).agg(
        count=("time_ms", "size"), time_ms=("time_ms", "sum"))
    total = max(float(rows["time_ms"].sum()), 1e-12)
    by_name["count_per_forward"] = by_name["count"] / active
    by_name["time_ms_per_forward"] = by_name["time_ms"] / active
    by_name["share_pct"] = 100 * by_name["time_ms"] / total
    top_table = (by_name.sort_values("time_ms", ascending=False).head(top)
                 [["name", "category", "count_per_forward", "time_ms_per_forward", "share_pct"]])
    cats = rows.groupby("category").agg(count=("time_ms", "size"), time_ms=("time_ms", "sum"))
    cats = cats.reindex(CATEGORIES, fill_value=0)
    categories = pd.DataFrame({
        "category": list(CATEGORIES),
        "count_per_forward": (cats["count"] / active).to_numpy(),
        "time_ms_per_forward": (cats["time_ms"] / active).to_numpy(),
        "share_pct": (100 * cats["time_ms"] / total).to_numpy(),
    })
    total_row = pd.DataFrame([{"category": "all", "count_per_forward": len(rows) / active,
                               "time_ms_per_forward": total / active, "share_pct": 100.0}])
    return top_table.reset_index(drop=True), pd.concat([categories, total_row], ignore_index=True)


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
    from bench.sweep.runner import hardware_slug

    return traces_dir(out, hardware_slug(device.type), trace_name(cell))


def profile_cell(config: ProfileConfig, out: Path) -> ProfileResult:
    """Build, profile and summarize one cell; writes the trace and kernel_summary.{csv,md}."""
    device = resolve_device(config.device)
    from bench.measure.repro import apply_precision_settings

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
            "timings.", "", "## By category", "", _md(result.categories), "## Top by time", "",
            _md(result.top)]
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
        + _md(table.drop(columns=["model", "batch_size", "precision", "resolution", "device", "num_threads",
                                  "unit"])),
        encoding="utf-8")
    return table, folder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a registered model name (see `bench models`)")
    parser.add_argument("--form", choices=CHOICES["form"], default="deploy")
    parser.add_argument("--batch", type=int, default=64, help="batch size")
    parser.add_argument("--precision", choices=CHOICES["precision"], default="fp32")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--memory-format", choices=CHOICES["memory_format"], default="contiguous")
    parser.add_argument("--mode", choices=CHOICES["mode"], default="infer")
    parser.add_argument("--runtime", choices=("eager", "compile"), default="eager")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--out", type=Path, default=Path("results"), help="results folder (default: results)")
    parser.add_argument("--wait", type=int, default=1, help="schedule: steps skipped before warming up")
    parser.add_argument("--warmup", type=int, default=2, help="schedule: steps traced but discarded")
    parser.add_argument("--active", type=int, default=3, help="schedule: steps recorded and averaged")
    parser.add_argument("--top", type=int, default=20, help="rows in the top-by-time table")
    parser.add_argument("--threads", type=int, default=None,
                        help=f"torch CPU threads (default: {CPU_THREADS} on the CPU, as the committed CPU runs; "
                             "torch's default on CUDA)")
    parser.add_argument("--compare-forms", action="store_true",
                        help="profile training and deploy form and write the kernel-count table")


def config_from_args(args: argparse.Namespace) -> ProfileConfig:
    """Validate the arguments (names the valid choices) and build the config."""
    from bench.sweep.axes import check_models

    check_models([args.model])
    for name in ("batch", "resolution", "active", "top"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be a positive integer; got {getattr(args, name)}")
    for name in ("wait", "warmup"):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name} must be 0 or more steps; got {getattr(args, name)}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be a positive integer; got {args.threads}")
    if args.mode == "train_step" and (args.form == "deploy" or args.compare_forms):
        raise ValueError("--mode train_step profiles training forms only; use --form train "
                         "without --compare-forms")
    cell = Cell(model=args.model, form=args.form, mode=args.mode, batch_size=args.batch,
                precision=args.precision, memory_format=args.memory_format, runtime=args.runtime,
                resolution=args.resolution)
    return ProfileConfig(cell=cell, device=args.device, wait=args.wait, warmup=args.warmup,
                         active=args.active, top=args.top, threads=args.threads)


def run(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"bench profile: {exc}", file=sys.stderr)
        return 2
    try:
        resolve_device(config.device)
    except RuntimeError as exc:
        print(f"bench profile: {exc}", file=sys.stderr)
        return 2
    if args.compare_forms:
        table, folder = compare_forms(config, args.out)
        print(_md(table.drop(columns=["model", "batch_size", "precision", "resolution", "device", "num_threads"])))
        print(f"kernel counts: {folder / 'kernel_counts.csv'}")
        return 0
    result = profile_cell(config, args.out)
    print(_md(result.categories))
    print(f"trace and summary: {result.trace_dir}")
    return 0
