"""`measure_latency(fn, device, regime, config) -> LatencyStats`: warm-up, adaptive sampling, stop reason.

Phases, the same for every regime (see `bench.measure.regimes` for how one call is timed):

1. First call, timed alone (`first_call_ms`): lazy initialisation, cudnn.benchmark autotuning, kernel
   loading. Then the regime's `prepare()` (the CUDA-graph capture).
2. Warm-up in windows of about `warmup_window_s` (at least `warmup_min_window` samples each) until two
   consecutive window medians agree within `warmup_rel_tol`, or `warmup_max_s` has passed
   (`warmup_converged` = False then). Not a fixed count: a model that autotunes or warms caches for
   longer gets more warm-up, a stable one gets less.
3. Timed blocks of about `block_s`, all samples kept. After each block the stop rule is checked, first
   match wins:
   - "max_samples": n >= max_samples (bounds memory and the samples file);
   - "converged": n >= min_samples, timed time >= min_time_s and IQR / median <= target_rel_iqr;
   - "timeout": timed time >= timeout_s (the timed phase only; warm-up has its own bound).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from bench.measure.regimes import Timer, get_regime
from bench.measure.stats import LatencyStats, median, relative_iqr

MAX_BLOCK = 10_000
"""Most calls in one warm-up window or timed block (bounds the CUDA event pool)."""


@dataclass(frozen=True)
class TimingConfig:
    """How long and how precisely to time. Durations in seconds, tolerances relative (0.01 = 1%)."""

    min_samples: int = 10
    min_time_s: float = 0.5
    target_rel_iqr: float = 0.01
    timeout_s: float = 30.0
    max_samples: int = 10_000
    warmup_rel_tol: float = 0.02
    warmup_window_s: float = 0.05
    warmup_min_window: int = 5
    warmup_max_s: float = 5.0
    block_s: float = 0.05
    graph_calls: int = 10
    graph_eager_warmup: int = 3

    def __post_init__(self) -> None:
        for name in ("min_samples", "max_samples", "warmup_min_window", "graph_calls"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TimingConfig.{name} must be >= 1; got {getattr(self, name)!r}")
        for name in ("timeout_s", "warmup_rel_tol", "warmup_window_s", "warmup_max_s", "block_s"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"TimingConfig.{name} must be > 0; got {getattr(self, name)!r}")
        for name in ("min_time_s", "target_rel_iqr", "graph_eager_warmup"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"TimingConfig.{name} must be >= 0; got {getattr(self, name)!r}")
        if self.max_samples < self.min_samples:
            raise ValueError(f"TimingConfig.max_samples ({self.max_samples}) must be >= min_samples "
                             f"({self.min_samples})")
        if self.timeout_s < self.min_time_s:
            raise ValueError(f"TimingConfig.timeout_s ({self.timeout_s}) must be >= min_time_s "
                             f"({self.min_time_s})")


@dataclass
class _Warmup:
    calls: int
    sample_ms: float
    converged: bool


@dataclass
class _Timed:
    samples_ms: list[float]
    enqueue_ms: list[float]
    reason: str
    duration_s: float


def _block_size(sample_ms: float, target_s: float, lowest: int) -> int:
    """Samples that fill about `target_s`, within [lowest, MAX_BLOCK]."""
    if sample_ms <= 0:
        return MAX_BLOCK
    return int(min(MAX_BLOCK, max(lowest, round(target_s * 1000.0 / sample_ms))))


def _warm_up(timer: Timer, config: TimingConfig, first_call_ms: float) -> _Warmup:
    """Windows until two consecutive medians agree within warmup_rel_tol, or warmup_max_s passes."""
    k = timer.calls_per_sample
    sample_ms, previous, calls = first_call_ms * k, None, 0
    start = time.perf_counter()
    while True:
        n = _block_size(sample_ms, config.warmup_window_s, config.warmup_min_window)
        current = median(timer.run(n).samples_ms)
        calls += n * k
        sample_ms = current * k
        if previous is not None and abs(current - previous) <= config.warmup_rel_tol * min(current, previous):
            return _Warmup(calls, sample_ms, True)
        if time.perf_counter() - start >= config.warmup_max_s:
            return _Warmup(calls, sample_ms, False)
        previous = current


def stop_reason(samples_ms: list[float], elapsed_s: float, config: TimingConfig) -> Optional[str]:
    """Why to stop now, or None to keep sampling (rules and their order: module docstring)."""
    n = len(samples_ms)
    if n >= config.max_samples:
        return "max_samples"
    if (n >= config.min_samples and elapsed_s >= config.min_time_s
            and relative_iqr(samples_ms) <= config.target_rel_iqr):
        return "converged"
    if elapsed_s >= config.timeout_s:
        return "timeout"
    return None


def _sample(timer: Timer, config: TimingConfig, sample_ms: float) -> _Timed:
    samples: list[float] = []
    enqueue: list[float] = []
    start = time.perf_counter()
    while True:
        n = min(config.max_samples - len(samples), _block_size(sample_ms, config.block_s, 1))
        block = timer.run(n)
        samples.extend(block.samples_ms)
        enqueue.extend(block.enqueue_ms or ())
        elapsed = time.perf_counter() - start
        reason = stop_reason(samples, elapsed, config)
        if reason is not None:
            return _Timed(samples, enqueue, reason, elapsed)
        sample_ms = median(block.samples_ms) * timer.calls_per_sample


def measure_latency(fn: Callable[[], Any], device: torch.device | str, regime: str,
                    config: Optional[TimingConfig] = None) -> LatencyStats:
    """Time the zero-argument callable `fn` (one call = one forward of the batch, or one train step).

    Samples are ms per call. CUDA regimes raise RuntimeError where CUDA is unavailable; an unknown
    regime raises ValueError naming the known ones.
    """
    config = config if config is not None else TimingConfig()
    timer_cls = get_regime(regime)
    with timer_cls(fn, torch.device(device), config) as timer:
        first_call_ms = timer.first_call_ms()
        eager_calls = timer.prepare()
        warm = _warm_up(timer, config, first_call_ms)
        timed = _sample(timer, config, warm.sample_ms)
    return LatencyStats.from_samples(
        regime, timed.samples_ms, stop_reason=timed.reason, warmup_iters=eager_calls + warm.calls,
        first_call_ms=first_call_ms, host_enqueue_ms=timed.enqueue_ms or None,
        warmup_converged=warm.converged, calls_per_sample=timer.calls_per_sample,
        duration_s=timed.duration_s, num_threads=timer.num_threads,
    )


def regimes() -> list[str]:
    """Names accepted by `measure_latency(..., regime=...)`."""
    from bench.measure.regimes import names

    return names()
