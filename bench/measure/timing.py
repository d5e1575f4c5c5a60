"""`measure_latency(fn, device, regime, config, timed_window) -> LatencyStats`: warm-up, sampling, stop.

Phases, the same for every regime (see `bench.measure.regimes` for how one call is timed):

1. First call, timed alone (`first_call_ms`): lazy initialisation, cudnn.benchmark autotuning, kernel
   loading. Then the regime's `prepare()` (the CUDA-graph capture).
2. Warm-up. CUDA regimes: windows of about `warmup_window_s` (at least `warmup_min_window` samples each)
   until two consecutive window medians agree within `warmup_rel_tol`, or `warmup_max_s` has passed
   (`warmup_converged` = False then): a model that autotunes or warms caches for longer gets more
   warm-up. The "cpu" regime (`Timer.convergence_warmup` False): a fixed `cpu_warmup_s` of calls, since
   CPU forwards showed no warm-up tail beyond the first few calls.
3. Timed blocks of about `block_s`, all samples kept, inside `timed_window()` if one is given (entered
   once, around the timed phase only). After each block the stop rule is checked, first match wins:
   - "max_samples": n >= max_samples (bounds memory and the samples file);
   - nothing below min_samples: sampling goes on, past timeout_s if need be;
   - "converged": timed time >= min_time_s and the 95% interval of the median
     (`bench.measure.stats.median_interval`) has relative half-width <= target_rel_ci;
   - "timeout": timed time >= timeout_s (the timed phase only; warm-up has its own bound).
   The rule stops on the precision of the median, not on the spread of samples: a noisy callable is
   sampled until its median is known well enough, not until its samples agree.

`bench.measure.paired.measure_pair` times two callables with the same phases, interleaved.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import time
from dataclasses import dataclass, fields
from typing import Any, Callable, ContextManager, Optional

import numpy as np
import torch

from bench.measure.regimes import Timer, get_regime
from bench.measure.stats import LatencyStats, median, median_interval, relative_half_width

MAX_BLOCK = 10_000
"""Most calls in one warm-up window or timed block (bounds the CUDA event pool)."""
PAIR_ORDERS: tuple[str, ...] = ("ABBA", "random")
"""Block orders of `measure_pair`: see `bench.measure.paired.pair_schedule`."""
MIN_BLOCK_PAIRS = 6
"""Fewest block pairs a 95% order-statistic interval of the speedup needs (1 - 2 / 2**6 = 96.9%)."""

TimedWindow = Callable[[], ContextManager[Any]]
"""A zero-argument callable returning a context manager entered once around the timed phase only
(e.g. `lambda: bench.measure.nvml.TelemetrySampler(device)`)."""

_LIMITS: dict[str, tuple[type, float, bool]] = {
    "min_samples": (int, 1, True), "max_samples": (int, 1, True), "warmup_min_window": (int, 1, True),
    "graph_calls": (int, 1, True), "graph_eager_warmup": (int, 0, True),
    "min_block_pairs": (int, MIN_BLOCK_PAIRS, True),
    "min_time_s": (float, 0, True), "target_rel_ci": (float, 0, True), "timeout_s": (float, 0, False),
    "warmup_rel_tol": (float, 0, False), "warmup_window_s": (float, 0, False),
    "warmup_max_s": (float, 0, False), "cpu_warmup_s": (float, 0, True), "block_s": (float, 0, False),
    "pair_block_s": (float, 0, False),
}
"""Numeric fields: (kind, lower bound, bound allowed). Floats must be finite; bools are not numbers."""


def _check_number(name: str, value: Any, kind: type, low: float, inclusive: bool) -> None:
    relation = ">=" if inclusive else ">"
    wanted = f"an integer {relation} {low:g}" if kind is int else f"a finite number {relation} {low:g}"
    numeric = numbers.Integral if kind is int else numbers.Real
    ok = (isinstance(value, numeric) and not isinstance(value, bool) and math.isfinite(value)
          and (value >= low if inclusive else value > low))
    if not ok:
        raise ValueError(f"TimingConfig.{name} must be {wanted}; got {value!r} ({type(value).__name__})")


@dataclass(frozen=True)
class TimingConfig:
    """How long and how precisely to time. Durations in seconds, tolerances relative (0.01 = 1%).

    `target_rel_ci`: stop when the 95% interval of the median (and, for pairs, of the speedup) has
    half-width <= this fraction of it (0: never converge, run to timeout_s or max_samples).
    `cpu_warmup_s`: the fixed warm-up of the "cpu" regime. `pair_block_s`: length of one block of one
    form in `measure_pair`, `min_block_pairs` the fewest block pairs it stops with, `pair_order` its
    block order ("ABBA" or "random"). Every field is checked in __post_init__, one message each.
    """

    min_samples: int = 10
    min_time_s: float = 0.5
    target_rel_ci: float = 0.01
    timeout_s: float = 30.0
    max_samples: int = 10_000
    warmup_rel_tol: float = 0.02
    warmup_window_s: float = 0.05
    warmup_min_window: int = 5
    warmup_max_s: float = 5.0
    cpu_warmup_s: float = 0.2
    block_s: float = 0.05
    pair_block_s: float = 0.1
    min_block_pairs: int = MIN_BLOCK_PAIRS
    pair_order: str = "ABBA"
    graph_calls: int = 10
    graph_eager_warmup: int = 3

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name in _LIMITS:
                _check_number(f.name, getattr(self, f.name), *_LIMITS[f.name])
        if self.pair_order not in PAIR_ORDERS:
            raise ValueError(f"TimingConfig.pair_order must be one of {', '.join(PAIR_ORDERS)}; "
                             f"got {self.pair_order!r}")
        if self.max_samples < self.min_samples:
            raise ValueError(f"TimingConfig.max_samples ({self.max_samples}) must be >= min_samples "
                             f"({self.min_samples})")
        if self.timeout_s < self.min_time_s:
            raise ValueError(f"TimingConfig.timeout_s ({self.timeout_s}) must be >= min_time_s "
                             f"({self.min_time_s})")


@dataclass(frozen=True)
class WarmStart:
    """What happened before a callable's timed phase: its first call, untimed calls, warm-up."""

    first_call_ms: float
    warmup_iters: int
    sample_ms: float
    converged: bool


@dataclass
class _Timed:
    samples_ms: list[float]
    enqueue_ms: list[float]
    reason: str
    duration_s: float
    timed_s: float


def block_size(sample_ms: float, target_s: float, lowest: int) -> int:
    """Samples that fill about `target_s`, within [lowest, MAX_BLOCK]."""
    if sample_ms <= 0:
        return MAX_BLOCK
    return int(min(MAX_BLOCK, max(lowest, round(target_s * 1000.0 / sample_ms))))


def _converging_warm_up(timer: Timer, config: TimingConfig, sample_ms: float) -> tuple[int, float, bool]:
    """Windows until two consecutive medians agree within warmup_rel_tol, or warmup_max_s passes."""
    k = timer.calls_per_sample
    previous, calls = None, 0
    start = time.perf_counter()
    while True:
        n = block_size(sample_ms, config.warmup_window_s, config.warmup_min_window)
        current = median(timer.run(n).samples_ms)
        calls += n * k
        sample_ms = current * k
        if previous is not None and abs(current - previous) <= config.warmup_rel_tol * min(current, previous):
            return calls, sample_ms, True
        if time.perf_counter() - start >= config.warmup_max_s:
            return calls, sample_ms, False
        previous = current


def _fixed_warm_up(timer: Timer, config: TimingConfig, sample_ms: float) -> tuple[int, float, bool]:
    """Calls for `cpu_warmup_s` (none if 0), in windows of about warmup_window_s."""
    k = timer.calls_per_sample
    calls = 0
    start = time.perf_counter()
    while time.perf_counter() - start < config.cpu_warmup_s:
        n = block_size(sample_ms, min(config.warmup_window_s, config.cpu_warmup_s), 1)
        sample_ms = median(timer.run(n).samples_ms) * k
        calls += n * k
    return calls, sample_ms, True


def warm_start(timer: Timer, config: TimingConfig) -> WarmStart:
    """Phases 1 and 2 of the module docstring on an entered timer."""
    first_call_ms = timer.first_call_ms()
    eager_calls = timer.prepare()
    warm_up = _converging_warm_up if timer.convergence_warmup else _fixed_warm_up
    calls, sample_ms, converged = warm_up(timer, config, first_call_ms * timer.calls_per_sample)
    return WarmStart(first_call_ms, eager_calls + calls, sample_ms, converged)


def stop_reason(samples_ms: list[float], elapsed_s: float, config: TimingConfig) -> Optional[str]:
    """Why to stop now, or None to keep sampling (rules and their order: module docstring)."""
    n = len(samples_ms)
    if n >= config.max_samples:
        return "max_samples"
    if n < config.min_samples:
        return None
    if elapsed_s >= config.min_time_s and median_precision(samples_ms) <= config.target_rel_ci:
        return "converged"
    if elapsed_s >= config.timeout_s:
        return "timeout"
    return None


def median_precision(samples_ms: list[float]) -> float:
    """Relative half-width of the median's 95% interval (inf while there are too few samples)."""
    values = np.asarray(samples_ms, dtype=float)
    return relative_half_width(median_interval(values), float(np.median(values)))


def _sample(timer: Timer, config: TimingConfig, sample_ms: float) -> _Timed:
    samples: list[float] = []
    enqueue: list[float] = []
    in_blocks = 0.0
    start = time.perf_counter()
    while True:
        n = min(config.max_samples - len(samples), block_size(sample_ms, config.block_s, 1))
        block_start = time.perf_counter()
        block = timer.run(n)
        in_blocks += time.perf_counter() - block_start
        samples.extend(block.samples_ms)
        enqueue.extend(block.enqueue_ms or ())
        elapsed = time.perf_counter() - start
        reason = stop_reason(samples, elapsed, config)
        if reason is not None:
            return _Timed(samples, enqueue, reason, elapsed, in_blocks)
        sample_ms = median(block.samples_ms) * timer.calls_per_sample


def window(timed_window: Optional[TimedWindow]) -> ContextManager[Any]:
    """The caller's context manager for the timed phase, or one that does nothing."""
    return timed_window() if timed_window is not None else contextlib.nullcontext()


def measure_latency(fn: Callable[[], Any], device: torch.device | str, regime: str,
                    config: Optional[TimingConfig] = None,
                    timed_window: Optional[TimedWindow] = None) -> LatencyStats:
    """Time the zero-argument callable `fn` (one call = one forward of the batch, or one train step).

    Samples are ms per call. `timed_window`, if given, is called once and its context manager wraps
    exactly the timed phase (not the first call, not warm-up). CUDA regimes raise RuntimeError where
    CUDA is unavailable; an unknown regime raises ValueError naming the known ones.
    """
    config = config if config is not None else TimingConfig()
    timer_cls = get_regime(regime)
    with timer_cls(fn, torch.device(device), config) as timer:
        warm = warm_start(timer, config)
        with window(timed_window):
            timed = _sample(timer, config, warm.sample_ms)
    return LatencyStats.from_samples(
        regime, timed.samples_ms, stop_reason=timed.reason, warmup_iters=warm.warmup_iters,
        first_call_ms=warm.first_call_ms, host_enqueue_ms=timed.enqueue_ms or None,
        warmup_converged=warm.converged, calls_per_sample=timer.calls_per_sample,
        duration_s=timed.duration_s, num_threads=timer.num_threads, timed_s=timed.timed_s,
    )


def regimes() -> list[str]:
    """Names accepted by `measure_latency(..., regime=...)`."""
    from bench.measure.regimes import names

    return names()
