"""The short looks a unit takes beside its timed window: the first call's wall time (for `compile`, the
compilation), the host's enqueue time per call, and the device's peak for percent-of-peak."""

from __future__ import annotations

import time
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any, Callable, Optional

import torch

from bench.models import workload

if TYPE_CHECKING:
    from bench.measure.timing import TimingConfig

HOST_PASS: dict[str, Any] = {"min_samples": 5, "max_samples": 200, "min_time_s": 0.0, "timeout_s": 0.2,
                             "warmup_max_s": 0.05, "warmup_min_window": 1}
"""The host-enqueue pass is a short second look (the model is already warm), not a second measurement: its
own small sample count and time cap, whatever the preset asks of the timed measurement (`paper`'s 20
samples would be 26 synchronised calls per form, seconds per large pair, for one flag). A median of
enqueue times needs few samples: a slow call (tens of ms) gets about 5, a fast one what fits in 0.2 s."""


def time_first_call(fn: Callable[[], Any], device: torch.device) -> float:
    """Wall time of the first call (for `compile`: tracing + compilation + one run), in ms."""
    workload.synchronize(device)
    start = time.perf_counter()
    fn()
    workload.synchronize(device)
    return (time.perf_counter() - start) * 1000.0


def host_pass_config(config: TimingConfig) -> TimingConfig:
    """The timed measurement's config with HOST_PASS's sample count and caps (other fields kept)."""
    names = {f.name for f in fields(config)}
    return replace(config, **{k: v for k, v in HOST_PASS.items() if k in names})


def host_enqueue_ms(fn: Callable[[], Any], device: torch.device, config: TimingConfig) -> Optional[float]:
    """A short 'synchronized' pass: its host enqueue median is how long the CPU spends issuing a call."""
    from bench.measure import timing

    stats = timing.measure_latency(fn, device, "synchronized", host_pass_config(config))
    return stats.host_enqueue_ms_median


def host_pass_needed(median_ms: Optional[float], module: Any) -> bool:
    """Whether the pass can change the `host_bound` flag: not where the pipelined median is too long for
    the host to have set it (`bench.measure.cuda_regimes.host_bound_possible`, counting module calls)."""
    from bench.measure.cuda_regimes import host_bound_possible

    modules = sum(1 for _ in module.modules()) if isinstance(module, torch.nn.Module) else 0
    return host_bound_possible(median_ms, modules)


def peak_tflops(device: torch.device, precision: str) -> Optional[float]:
    """The device's dense peak for `precision` (`bench.measure.flops.peak_tflops`); None on the CPU."""
    if device.type != "cuda":
        return None
    from bench.measure.flops import peak_tflops as peak

    return peak(torch.cuda.get_device_name(device), precision)
