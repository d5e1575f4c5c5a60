"""One cell, inside its own process: `python -m bench.sweep.cell SPEC.json OUTCOME.json`.

Steps: seed and precision switches -> memory baseline -> build the training form with random BN
statistics (so the gate means something) -> deploy form via `bench.reparam.to_deploy` and the correctness
gate -> prepare (device, dtype, memory format, runtime) -> timing inside an NVML telemetry window -> a
separate memory pass -> MACs. Any exception becomes the outcome's status ('oom' or 'error') and text,
with every field measured before it kept.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
import traceback
from dataclasses import fields as dc_fields
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import torch

from bench.sweep import collect, faults, workload
from bench.sweep.gate import GateResult, run_gate
from bench.sweep.protocol import CellOutcome, CellSpec, write_atomic

OOM_MARKERS: tuple[str, ...] = (
    "out of memory", "can't allocate memory", "cannot allocate memory", "not enough memory",
    "alloc_failed",  # CUBLAS_STATUS_ALLOC_FAILED / CUDNN_STATUS_ALLOC_FAILED: the library's cudaMalloc failed
)
ERROR_CHARS = 1500
SYNC_PASS: dict[str, float] = {"min_time_s": 0.2, "timeout_s": 2.0, "warmup_max_s": 0.5}
"""The host-enqueue pass is a short second look (the model is already warm), not a second measurement."""
GATE_MAX_BATCH = 16
"""Eval-mode BN and convs treat samples independently, so a few samples check the conversion as well as
the full batch does, without a second full-batch training-form forward (memory) at batch 256."""


def classify(exc: BaseException) -> str:
    """'oom' for torch.OutOfMemoryError or an allocator failure message, else 'error'."""
    if isinstance(exc, torch.OutOfMemoryError):
        return "oom"
    text = str(exc).lower()
    return "oom" if any(marker in text for marker in OOM_MARKERS) else "error"


def describe(exc: BaseException) -> str:
    """Type and message; compile failures say so (dynamo/inductor exceptions)."""
    origin = type(exc).__module__
    prefix = "compile failed: " if origin.startswith(("torch._dynamo", "torch._inductor")) else ""
    text = f"{prefix}{type(exc).__name__}: {exc}".strip()
    return text[:ERROR_CHARS]


def _watch_parent() -> None:
    """Exit if the sweep process dies (killed, Ctrl-C'd), so no orphan keeps measuring."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


def _randomize_bn(model: torch.nn.Module, seed: int) -> None:
    from bench.models import randomize_bn_

    randomize_bn_(model, generator=torch.Generator().manual_seed(seed))


def build(spec: CellSpec, device: torch.device) -> tuple[torch.nn.Module, Optional[GateResult]]:
    """The model in the cell's form, prepared; for deploy forms also the gate's verdict.

    The training form of a deploy cell is freed before returning, so nothing measured later sees it.
    """
    from bench.models import create
    from bench.reparam import to_deploy

    cell = spec.cell
    model = create(cell.model, deploy=False)
    _randomize_bn(model, spec.seed)
    model.eval()
    if cell.form == "train":
        return workload.prepare_model(model, cell, device), None
    deployed = to_deploy(model)
    faults.trigger(list(spec.faults), "deploy", deployed)
    train = workload.prepare_model(model, cell, device)
    deployed = workload.prepare_model(deployed, cell, device)
    x = workload.make_input(cell, device, batch_size=min(cell.batch_size, GATE_MAX_BATCH), seed=spec.seed + 1)
    gate = run_gate(train, deployed, x, cell.precision)
    del train, model, x
    _free(device)
    return deployed, gate


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _count_macs(model: torch.nn.Module, spec: CellSpec, device: torch.device) -> Optional[int]:
    """MACs of one sample's forward (batch-1 input at the cell's resolution)."""
    from bench.measure.flops import count_macs

    x1 = workload.make_input(spec.cell, device, batch_size=1, seed=spec.seed)
    with torch.inference_mode():
        return int(count_macs(model, x1))


def _timing_config(spec: CellSpec) -> Any:
    from bench.measure.timing import TimingConfig

    return TimingConfig(**spec.timing)


def _time_first_call(fn: Any, device: torch.device) -> float:
    """Wall time of the first call (for `compile`: tracing + compilation + one run), in ms."""
    workload.synchronize(device)
    start = time.perf_counter()
    fn()
    workload.synchronize(device)
    return (time.perf_counter() - start) * 1000.0


def measure(spec: CellSpec, model: torch.nn.Module, device: torch.device, baseline: Any,
            out: dict[str, Any]) -> list[float]:
    """Timing (with telemetry), a synchronized pass for host enqueue time, memory, MACs -> `out`."""
    from bench.measure.memory import measure_memory
    from bench.measure.nvml import TelemetrySampler
    from bench.measure.timing import measure_latency

    cell = spec.cell
    macs = _count_macs(model, spec, device)
    out.update(collect.model_fields(model, macs))
    x = workload.make_input(cell, device, seed=spec.seed)
    fn = workload.make_fn(model, x, cell, device)
    faults.trigger(list(spec.faults), "workload", device)
    first_call_ms = _time_first_call(fn, device) if cell.runtime == "compile" else None
    config, regime = _timing_config(spec), workload.regime_for(cell, device)
    window_start = time.perf_counter()
    with TelemetrySampler(device) as sampler:
        stats = measure_latency(fn, device, regime, config)
    window_s = time.perf_counter() - window_start
    out.update(collect.timing_fields(stats, cell.batch_size))
    if first_call_ms is not None:
        out["first_call_ms"] = first_call_ms
    if regime == "pipelined" and out.get("host_enqueue_ms_median") is None:
        out["host_enqueue_ms_median"] = _host_enqueue_ms(fn, device, config)
    telemetry = sampler.result
    window_s = getattr(telemetry, "duration_s", None) or window_s
    out.update(collect.telemetry_fields(telemetry, window_s, stats.median_ms, cell.batch_size))
    _free(device)
    out.update(collect.memory_fields(measure_memory(fn, device, baseline)))
    out.update(collect.compute_fields(macs, stats.median_ms, cell.batch_size, cell.mode,
                                      _peak_tflops(device, cell.precision)))
    return [float(s) for s in stats.samples_ms]


def _host_enqueue_ms(fn: Any, device: torch.device, config: Any) -> Optional[float]:
    """A short 'synchronized' pass: its host enqueue median is how long the CPU spends issuing a call."""
    from bench.measure.timing import measure_latency

    names = {f.name for f in dc_fields(config)}
    short = {k: v for k, v in SYNC_PASS.items() if k in names}
    stats = measure_latency(fn, device, "synchronized", replace(config, **short))
    return stats.host_enqueue_ms_median


def _peak_tflops(device: torch.device, precision: str) -> Optional[float]:
    if device.type != "cuda":
        return None
    from bench.measure.flops import peak_tflops

    return peak_tflops(torch.cuda.get_device_name(device), precision)


def probe(spec: CellSpec, model: torch.nn.Module, device: torch.device) -> None:
    """`--max-batch`: does one call of this batch fit? Two calls, so optimizer state is allocated too."""
    fn = workload.make_fn(model, workload.make_input(spec.cell, device, seed=spec.seed), spec.cell, device)
    fn()
    fn()
    workload.synchronize(device)


def run_spec(spec: CellSpec, out: dict[str, Any]) -> tuple[str, Optional[str], list[float]]:
    from bench.measure.memory import take_baseline
    from bench.measure.repro import apply_precision_settings, reproducibility_flags

    torch.manual_seed(spec.seed)
    if spec.num_threads:
        torch.set_num_threads(spec.num_threads)
    device = torch.device("cuda:0" if spec.device == "cuda" else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("the cell asks for CUDA but torch.cuda.is_available() is False")
    faults.trigger(list(spec.faults), "start")
    apply_precision_settings(spec.cell.precision)
    out.update(collect.env_fields(spec.seed, reproducibility_flags()))
    baseline = take_baseline(device)
    model, gate = build(spec, device)
    if gate is not None:
        out.update(max_abs_err=gate.max_abs_err, max_rel_err=gate.max_rel_err, tolerance=gate.tolerance)
    if spec.probe:
        probe(spec, model, device)
        return "ok", None, []
    samples = measure(spec, model, device, baseline, out)
    if gate is not None and not gate.passed:
        return "mismatch", gate.describe(), samples
    return "ok", None, samples


def main(argv: Optional[list[str]] = None) -> int:
    spec_path, out_path = (argv if argv is not None else sys.argv[1:])[:2]
    _watch_parent()
    spec = CellSpec.from_json(Path(spec_path).read_text())
    out: dict[str, Any] = {}
    try:
        status, error, samples = run_spec(spec, out)
        outcome = CellOutcome(status=status, error=error, samples_ms=samples)
    except Exception as exc:  # noqa: BLE001 - every failure is data
        traceback.print_exc()
        outcome = CellOutcome(status=classify(exc), error=describe(exc))
    outcome.fields = out
    write_atomic(Path(out_path), outcome.to_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
