"""The short looks a unit takes beside its timed window: the first call's wall time (for `compile`, the
compilation), the host's enqueue time per call, and the device's peak for percent-of-peak."""

from __future__ import annotations

import time
from dataclasses import fields, replace
from typing import Any, Callable, Optional

import torch

from bench.sweep import workload

SYNC_PASS: dict[str, float] = {"min_time_s": 0.2, "timeout_s": 2.0, "warmup_max_s": 0.5}
"""The host-enqueue pass is a short second look (the model is already warm), not a second measurement."""


def time_first_call(fn: Callable[[], Any], device: torch.device) -> float:
    """Wall time of the first call (for `compile`: tracing + compilation + one run), in ms."""
    workload.synchronize(device)
    start = time.perf_counter()
    fn()
    workload.synchronize(device)
    return (time.perf_counter() - start) * 1000.0


def host_enqueue_ms(fn: Callable[[], Any], device: torch.device, config: Any) -> Optional[float]:
    """A short 'synchronized' pass: its host enqueue median is how long the CPU spends issuing a call."""
    from bench.measure.timing import measure_latency

    names = {f.name for f in fields(config)}
    short = {k: v for k, v in SYNC_PASS.items() if k in names}
    stats = measure_latency(fn, device, "synchronized", replace(config, **short))
    return stats.host_enqueue_ms_median


def peak_tflops(device: torch.device, precision: str) -> Optional[float]:
    """The device's dense peak for `precision` (`bench.measure.flops.peak_tflops`); None on the CPU."""
    if device.type != "cuda":
        return None
    from bench.measure.flops import peak_tflops as peak

    return peak(torch.cuda.get_device_name(device), precision)
