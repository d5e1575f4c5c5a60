"""How long each gpu-check step should take on a device, from the code's own caps and per-step costs.

A sweep step (the check cells, each preset) is estimated from its config: the cells it expands and the
units they form (`bench.sweep.plan.cells.expand`, `bench.sweep.protocol.group_units`); per unit the phases a
worker runs (`bench.sweep.worker.unit`): the gate, each form's runtime build (`BUILDS`: compile, export,
engine), first call and warm-up (up to `warmup_max_s`), the timed phase from its earliest stop
(`min_time_s`, `min_samples`, `min_block_pairs` blocks of `pair_block_s`) up to `timeout_s`, the
host-enqueue pass where `host_bound_possible` leaves it (`HOST_PASS`), a memory pass; per model a worker
start and a build, overlapped with the units before it as the executor overlaps them. Cells this machine
cannot run (a runtime's package or provider missing) are skipped rows, not counted. Other steps from their own constants (the cross-check's timing and
alternations, the blog timer's, the number of gpu tests). `expected_s` takes every timed phase at its
earliest stop (a steady GPU converges there); `cap_s` at its caps.

A call's latency is its MACs (`results/baselines/cpu_invariants.json`, scaled to the resolution) at
`conv_efficiency` of the device's dense peak (`bench.measure.flops.peak_tflops`), and no less than the
host's time to issue its ops (`host_us_per_op`). A profile's per-step costs (process start, build, first
call, compile, ...) are planning figures set before any run on such a device; `summary.md` puts each
step's measured seconds beside its estimate, so a real run corrects them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:
    from bench.gpucheck.steps import Step
    from bench.measure.timing import TimingConfig
    from bench.results.cell import Cell
    from bench.sweep.plan.config import SweepConfig

REPO = Path(__file__).resolve().parents[2]
WARMUP_WINDOWS = 3
"""Converging warm-up: two windows that agree, after one that absorbs the tail."""
GATE_BATCH = 16
DEFAULT_MODEL = {"macs": 2e9, "ops": 150, "params_m": 25.0}
"""A model the invariants file does not list (an own model, timm:, torchvision:): a mid-sized CNN."""


@dataclass(frozen=True)
class DeviceProfile:
    """Per-step costs on one kind of machine, in seconds unless named otherwise (planning figures)."""

    name: str
    gpu_name: str
    """The name torch reports, for the dense peak (`bench.measure.flops.peak_tflops`)."""
    process_start_s: float
    """A Python process importing torch and creating the CUDA context."""
    triton_import_s: float
    build_s: float
    build_s_per_mparam: float
    """Building a model's training form, converting it and counting its MACs, on the host."""
    first_call_s: float
    """A form's first call at a new shape beyond its compute: cuDNN autotuning, module loading."""
    conv_efficiency: float
    """Achieved fraction of the dense peak in these networks' convolutions."""
    host_us_per_op: float
    compile_s: float
    """torch.compile (inductor) of one form of a small network."""
    export_s: float
    """torch.onnx.export of one form of a small network and opening its ONNX Runtime session."""
    engine_build_s: float
    """A TensorRT engine build of one form of a small network at one batch size."""
    unit_overhead_s: float
    """A unit's bookkeeping: spec and outcome files, collections, the memory pass's cache emptying."""
    pytest_s_per_test: float
    profile_overhead_s: float


PROFILES: dict[str, DeviceProfile] = {
    "h200": DeviceProfile(
        name="h200", gpu_name="NVIDIA H200", process_start_s=6.0, triton_import_s=3.0, build_s=0.5,
        build_s_per_mparam=0.06, first_call_s=1.0, conv_efficiency=0.5, host_us_per_op=10.0, compile_s=45.0,
        export_s=5.0, engine_build_s=45.0, unit_overhead_s=0.5, pytest_s_per_test=4.0, profile_overhead_s=10.0),
}
"""Known device kinds (`--assume NAME`). h200: one H200 SXM (141 GB, 700 W) on a 16-core host."""


def detect_profile(device_name: str) -> DeviceProfile:
    """The profile whose GPU name the device's contains, else h200's costs with this device's peaks."""
    for profile in PROFILES.values():
        if profile.gpu_name.lower() in device_name.lower():
            return profile
    return replace(PROFILES["h200"], name=f"unknown ({device_name}), h200's costs", gpu_name=device_name)


@dataclass(frozen=True)
class Estimate:
    """Seconds a step should take (`expected_s`), at its caps (`cap_s`), and the least worth starting it
    with (`least_s`: all of it, or for a resumable sweep its first unit); `detail` says what it counts."""

    expected_s: float
    cap_s: float
    least_s: float
    detail: str = ""


# ---- models and calls ------------------------------------------------------------------------------

_INVARIANTS: dict[str, Any] = {}


def model_figures(model: str, form: str) -> dict[str, float]:
    """MACs per 224x224 sample, ATen ops per forward and training-form parameters (M) of a model."""
    if not _INVARIANTS:
        from bench.models.invariants import EXPECTATIONS, load

        _INVARIANTS.update(load(REPO / EXPECTATIONS)[0]["models"])
    entry = _INVARIANTS.get(model)
    if entry is None:
        return dict(DEFAULT_MODEL)
    return {"macs": float(entry["macs"][form]), "ops": float(entry["ops_per_forward"][form]["all"]),
            "params_m": entry["params"]["train"] / 1e6}


def latency_s(profile: DeviceProfile, model: str, form: str, batch: int, resolution: int,
              precision: str = "fp32", mode: str = "infer", graph: bool = False) -> float:
    """One call: compute at `conv_efficiency` of the dense peak, or the host's issue time, whichever is
    longer (a CUDA graph replay issues nothing from the host)."""
    from bench.measure.flops import peak_tflops

    figures = model_figures(model, form)
    factor = 3 if mode == "train_step" else 1  # forward + backward (bench.sweep.worker.collect)
    macs = figures["macs"] * (resolution / 224) ** 2 * batch * factor
    peak = peak_tflops(profile.gpu_name, precision) or peak_tflops(PROFILES["h200"].gpu_name, precision) or 50.0
    compute = 2 * macs / (peak * 1e12 * profile.conv_efficiency)
    host = 0.0 if graph else figures["ops"] * factor * profile.host_us_per_op / 1e6
    return max(compute, host)


def lone_timing_s(config: TimingConfig, call_s: float, at_caps: bool = False) -> float:
    """A lone callable's timed phase: at least min_samples calls; stops at min_time_s once precise enough,
    at timeout_s otherwise (`bench.measure.timing.stop_reason`)."""
    least = config.min_samples * call_s
    return max(least, config.timeout_s if at_caps else min(config.timeout_s, max(config.min_time_s, least)))


def pair_timing_s(config: TimingConfig, calls_s: Sequence[float], at_caps: bool = False) -> float:
    """Interleaved blocks (`bench.measure.paired.pair_stop_reason`): at least min_block_pairs pairs and
    min_samples per form, then as `lone_timing_s`."""
    blocks = [max(config.pair_block_s, c) for c in calls_s]
    per_block = [max(1.0, config.pair_block_s / c) for c in calls_s]
    pairs = max(config.min_block_pairs, *(math.ceil(config.min_samples / n) for n in per_block))
    least = pairs * sum(blocks)
    return max(least, config.timeout_s if at_caps else min(config.timeout_s, max(config.min_time_s, least)))


BUILDS: dict[str, Callable[[DeviceProfile], float]] = {
    "compile": lambda p: p.compile_s,
    "compile_frozen": lambda p: p.compile_s,
    "onnxruntime": lambda p: p.export_s,
    "openvino": lambda p: p.export_s,
    "onnxruntime_trt": lambda p: p.export_s + p.engine_build_s,
    "tensorrt": lambda p: p.export_s + p.engine_build_s,
}
"""What a runtime builds before a form's first call (`bench.sweep.worker.runtimes`: compile, export and session,
engine), per form; eager and cudagraph build nothing."""


def warm_start_s(profile: DeviceProfile, config: TimingConfig, call_s: float, runtime: str, at_caps: bool = False) -> float:
    """First call, the cudagraph capture or the runtime's build (`BUILDS`), and the converging warm-up."""
    windows = WARMUP_WINDOWS * max(config.warmup_window_s, config.warmup_min_window * call_s)
    warm = config.warmup_max_s if at_caps else min(config.warmup_max_s, windows)
    extra = (config.graph_eager_warmup + config.graph_calls) * call_s if runtime == "cudagraph" else 0.0
    build = BUILDS.get(runtime)
    return profile.first_call_s + call_s + extra + (build(profile) if build else 0.0) + warm


# ---- sweeps ----------------------------------------------------------------------------------------

def regime(cell: Cell) -> str:
    """The cell's timing regime on CUDA, as its runtime declares it (a host pass follows 'pipelined')."""
    from bench.sweep.worker import runtimes

    return runtimes.get(cell.runtime).regimes["cuda"]


def unit_s(profile: DeviceProfile, config: TimingConfig, cells: Sequence[Cell], at_caps: bool = False) -> float:
    """One unit (`bench.sweep.worker.unit.run_unit`): gate, warm starts, timing, host pass, memory, overhead."""
    from bench.measure.cuda_regimes import host_bound_possible
    from bench.sweep.worker.extra_timings import HOST_PASS

    first = cells[0]
    graph = first.runtime == "cudagraph"
    calls = [latency_s(profile, c.model, c.form, c.batch_size, c.resolution, c.precision, c.mode, graph)
             for c in cells]
    seconds = profile.unit_overhead_s
    if len(cells) == 2:
        gate_batch = min(first.batch_size, GATE_BATCH)
        seconds += 2 * latency_s(profile, first.model, "train", gate_batch, first.resolution, first.precision)
        seconds += pair_timing_s(config, calls, at_caps)
    else:
        seconds += lone_timing_s(config, calls[0], at_caps)
    for cell, call in zip(cells, calls):
        seconds += warm_start_s(profile, config, call, cell.runtime, at_caps)
        seconds += (1 if cell.mode == "infer" else 2) * call  # the memory pass
        ops = model_figures(cell.model, cell.form)["ops"]
        if regime(cell) == "pipelined" and host_bound_possible(call * 1000, int(ops)):
            seconds += 2 * call + max(HOST_PASS["min_samples"] * call, HOST_PASS["timeout_s"])
    return seconds


def sweep_estimate(profile: DeviceProfile, config: SweepConfig) -> Estimate:
    """A `bench run` of `config` on CUDA (module docstring)."""
    from bench.sweep.plan.cells import expand
    from bench.sweep.protocol import group_units

    timing = config.timing
    units = group_units([c for c in expand(config, "cuda") if not c.skip_reason])
    groups: list[list[tuple]] = []
    for unit in units:
        key = (unit[0].model, unit[0].runtime)
        if not groups or (groups[-1][0][0].model, groups[-1][0][0].runtime) != key:
            groups.append([])
        groups[-1].append(unit)
    totals = {}
    for at_caps in (False, True):
        seconds, previous = profile.process_start_s, 0.0
        for group in groups:
            build = profile.build_s + profile.build_s_per_mparam * model_figures(group[0][0].model, "train")["params_m"]
            # the first model's worker was prestarted with the parent; each next one starts and builds
            # while the model before it is measured (bench.sweep.local.executor)
            ready = build if not previous else max(0.0, profile.process_start_s + build - previous)
            previous = sum(unit_s(profile, timing, u, at_caps) for u in group)
            seconds += ready + previous
        totals[at_caps] = seconds
    first = (profile.process_start_s + profile.build_s + unit_s(profile, timing, units[0])) if units else 0.0
    pairs = sum(1 for u in units if len(u) == 2)
    detail = (f"{len(units)} units ({pairs} pairs), {len(groups)} workers; timed {timing.min_time_s:g}-"
              f"{timing.timeout_s:g} s per unit, warm-up <= {timing.warmup_max_s:g} s per form")
    return Estimate(totals[False], totals[True], first, detail)


# ---- the other steps -------------------------------------------------------------------------------

def process_estimate(profile: DeviceProfile, work_s: float, detail: str) -> Estimate:
    seconds = profile.process_start_s + work_s
    return Estimate(seconds, seconds, seconds, detail)


def xcheck_estimate(profile: DeviceProfile) -> Estimate:
    from bench.gpucheck import xcheck
    from bench.measure.timing import TimingConfig

    config = TimingConfig(**xcheck.HARNESS_TIMING)
    work, build = profile.triton_import_s, profile.build_s + profile.build_s_per_mparam * 9.1
    for form, batch in xcheck.CASES:
        call = latency_s(profile, "repvgg_a0", form, batch, 224)
        graph = latency_s(profile, "repvgg_a0", form, batch, 224, graph=True)
        harness = (warm_start_s(profile, config, call, "eager") + lone_timing_s(config, call)
                   + warm_start_s(profile, config, graph, "cudagraph") + lone_timing_s(config, graph))
        triton = 2 * (xcheck.DO_BENCH_MS / 1000 + 5 * call)  # do_bench and do_bench_cudagraph
        work += build + xcheck.ALTERNATIONS * (harness + triton)
    return process_estimate(profile, work, f"{len(xcheck.CASES)} cases x {xcheck.ALTERNATIONS} alternations "
                                           f"of 2 harness timers and 2 triton timers")


def blog_timer_estimate(profile: DeviceProfile) -> Estimate:
    from bench.gpucheck import blog_timer
    from bench.measure.timing import TimingConfig

    config = TimingConfig(**blog_timer.HARNESS_TIMING)
    batch, size = blog_timer.GPU_SETTING
    work = profile.build_s + profile.build_s_per_mparam * model_figures("blog_repvgg", "train")["params_m"]
    for form in ("train", "deploy"):
        call = latency_s(profile, "blog_repvgg", form, batch, size)
        work += profile.first_call_s + blog_timer.NAIVE_CALLS * call
        work += warm_start_s(profile, config, call, "eager") + lone_timing_s(config, call)
    return process_estimate(profile, work, f"{blog_timer.NAIVE_CALLS} naive calls and a short harness "
                                           f"measurement per form, batch {batch}")


def gpu_test_count(tests: Path = REPO / "tests") -> int:
    """gpu tests by their source: every test of a module marked gpu as a whole, else each marked one."""
    count = 0
    for path in sorted(tests.rglob("test_*.py")):
        text = path.read_text(encoding="utf-8")
        tests_here = len(re.findall(r"^def test_", text, flags=re.M))
        if re.search(r"^pytestmark = pytest\.mark\.gpu", text, flags=re.M):
            count += tests_here
        else:
            count += len(re.findall(r"^@pytest\.mark\.gpu\s*\ndef test_", text, flags=re.M))
    return count


def pytest_estimate(profile: DeviceProfile) -> Estimate:
    n = gpu_test_count()
    return process_estimate(profile, profile.process_start_s + n * profile.pytest_s_per_test,
                            f"{n} gpu test functions (parametrized cases count once)")


def profile_estimate(profile: DeviceProfile, batch: int) -> Estimate:
    from dataclasses import fields

    from bench.profile.capture import ProfileConfig

    defaults = {f.name: f.default for f in fields(ProfileConfig)}
    steps = defaults["wait"] + defaults["warmup"] + defaults["active"]
    work = profile.build_s + profile.build_s_per_mparam * 9.1 + profile.profile_overhead_s
    for form in ("train", "deploy"):
        work += profile.first_call_s + steps * latency_s(profile, "repvgg_a0", form, batch, 224)
    return process_estimate(profile, work, f"two forms, {steps} profiled steps each")


# ---- the plan --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Planned:
    """A step with its estimate, the timeout it runs under, and the seconds the plan gives it."""

    step: Step
    estimate: Estimate
    timeout_s: float
    planned_s: float
    note: str = ""


TIMEOUT_FACTOR, TIMEOUT_MARGIN_S = 2.0, 60.0
"""A step's own timeout: twice its expected time, and at least a minute beyond it, so a cold machine (a
first import from disk, first CUDA initialisation) is not killed as a hang."""
RESERVE_S = 15.0
"""Budget kept for writing the last summary and archive after the steps."""
GRACE_S = 20.0
"""From SIGTERM to SIGKILL when a step is stopped at its timeout (`bench.gpucheck.steps`); every step's
start leaves room for it."""


def own_timeout_s(estimate: Estimate) -> float:
    return max(TIMEOUT_FACTOR * estimate.expected_s, estimate.expected_s + TIMEOUT_MARGIN_S)


def make_plan(steps: Sequence[Step], estimate: Callable[[Step], Estimate], budget_s: float) -> list[Planned]:
    """In order, each step that fits what is left of the budget; a resumable step (a preset) also when only
    part of it fits (`least_s`), given what is left; the rest are not planned, with the reason."""
    left, plan = budget_s - RESERVE_S, []
    for step in steps:
        est = estimate(step)
        timeout = own_timeout_s(est)
        if est.expected_s <= left - GRACE_S:
            plan.append(Planned(step, est, timeout, est.expected_s))
            left -= est.expected_s
        elif step.resumable and est.least_s <= left - GRACE_S:
            plan.append(Planned(step, est, timeout, left, f"the rest of the budget, {left:.0f} s: a cut run "
                                                         f"resumes next time"))
            left = 0.0
        else:
            plan.append(Planned(step, est, timeout, 0.0, f"not planned: needs {est.least_s:.0f} s and {GRACE_S:.0f} s "
                                                        f"to stop it; {max(left, 0):.0f} s left"))
    return plan


def planned_total_s(plan: Sequence[Planned]) -> float:
    return sum(p.planned_s for p in plan) + (RESERVE_S if plan else 0.0)


def render_plan(plan: Sequence[Planned], budget_s: float, device: str) -> list[str]:
    lines = [f"bench gpu-check plan on {device}, budget {budget_s:.0f} s (estimates from the code's caps and "
             f"the device's per-step costs; 'cap' = every timed phase at its timeout)"]
    for i, p in enumerate(plan, 1):
        note = f"  [{p.note}]" if p.note else ""
        lines.append(f"{i:>3}. {p.step.name:<14} est {p.estimate.expected_s:6.0f} s  cap {p.estimate.cap_s:6.0f} s  "
                     f"timeout {p.timeout_s:5.0f} s  {p.step.title}: {p.estimate.detail}{note}")
    lines.append(f"  +  summary and archive {RESERVE_S:.0f} s")
    lines.append(f"planned: {planned_total_s(plan):.0f} s of {budget_s:.0f} s")
    return lines
