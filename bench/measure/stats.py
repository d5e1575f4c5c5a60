"""Latency statistics, computed in one place: `LatencyStats.from_samples(...)`.

Percentiles use linear interpolation between order statistics (Hyndman & Fan 1996, definition 7, the
default of numpy.percentile and R's quantile): for sorted x of length n and q in [0, 1],
h = (n - 1) q and P(q) = x[floor h] + (h - floor h) (x[floor h + 1] - x[floor h]).
IQR = P(0.75) - P(0.25). CV = sample standard deviation (n - 1 in the denominator) / mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

NOISY_REL_IQR = 0.1
"""Relative IQR above which a measurement calls itself noisy (as torch.utils.benchmark's Measurement does)."""


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """P(q) of already sorted values, q in [0, 1], by linear interpolation (numpy's default method)."""
    if not sorted_values:
        raise ValueError("percentile of no values is undefined")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is outside [0, 1]")
    h = (len(sorted_values) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (h - lo) * (sorted_values[hi] - sorted_values[lo])


def median(values: Sequence[float]) -> float:
    return percentile(sorted(values), 0.5)


def relative_iqr(values: Sequence[float]) -> float:
    """(P75 - P25) / P50: the spread the adaptive stopping rule compares against its target."""
    ordered = sorted(values)
    mid = percentile(ordered, 0.5)
    spread = percentile(ordered, 0.75) - percentile(ordered, 0.25)
    return spread / mid if mid > 0 else math.inf


def _coefficient_of_variation(values: Sequence[float], mean: float) -> Optional[float]:
    if len(values) < 2 or mean <= 0:
        return None
    variance = math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return math.sqrt(variance) / mean


@dataclass(frozen=True)
class LatencyStats:
    """One timed measurement of one callable: raw samples (ms per call) and their statistics.

    `warmup_iters` counts calls made after the first call and before the first timed sample.
    `calls_per_sample` is 1 except for the "cudagraph" regime, where one sample is one replay of a graph
    holding that many calls, divided by it. `duration_s` is the wall time of the timed phase.
    """

    regime: str
    samples_ms: tuple[float, ...]
    median_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    p5_ms: float
    p25_ms: float
    p75_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    iqr_ms: float
    cv: Optional[float]
    n: int
    stop_reason: str
    warmup_iters: int
    first_call_ms: Optional[float]
    host_enqueue_ms_median: Optional[float]
    warmup_converged: bool = True
    calls_per_sample: int = 1
    duration_s: Optional[float] = None
    num_threads: Optional[int] = None

    @classmethod
    def from_samples(cls, regime: str, samples_ms: Sequence[float], *, stop_reason: str,
                     warmup_iters: int = 0, first_call_ms: Optional[float] = None,
                     host_enqueue_ms: Optional[Sequence[float]] = None, warmup_converged: bool = True,
                     calls_per_sample: int = 1, duration_s: Optional[float] = None,
                     num_threads: Optional[int] = None) -> "LatencyStats":
        """Statistics of `samples_ms` (in measurement order, kept as is); host enqueue times -> median."""
        samples = tuple(float(s) for s in samples_ms)
        if not samples:
            raise ValueError(f"regime '{regime}' produced no samples; nothing to summarise")
        if any(not math.isfinite(s) or s < 0 for s in samples):
            raise ValueError(f"regime '{regime}' produced a negative or non-finite sample: {min(samples)}")
        ordered = sorted(samples)
        p = {q: percentile(ordered, q / 100) for q in (5, 25, 50, 75, 90, 95, 99)}
        mean = math.fsum(samples) / len(samples)
        enqueue = median(host_enqueue_ms) if host_enqueue_ms else None
        return cls(
            regime=regime, samples_ms=samples, median_ms=p[50], mean_ms=mean, min_ms=ordered[0],
            max_ms=ordered[-1], p5_ms=p[5], p25_ms=p[25], p75_ms=p[75], p90_ms=p[90], p95_ms=p[95],
            p99_ms=p[99], iqr_ms=p[75] - p[25], cv=_coefficient_of_variation(samples, mean), n=len(samples),
            stop_reason=stop_reason, warmup_iters=warmup_iters, first_call_ms=first_call_ms,
            host_enqueue_ms_median=enqueue, warmup_converged=warmup_converged,
            calls_per_sample=calls_per_sample, duration_s=duration_s, num_threads=num_threads,
        )

    @property
    def rel_iqr(self) -> float:
        return self.iqr_ms / self.median_ms if self.median_ms > 0 else math.inf

    @property
    def noisy(self) -> bool:
        return self.rel_iqr > NOISY_REL_IQR

    def summary(self) -> str:
        """One line for logs: median, spread, n and why sampling stopped."""
        text = (f"{self.regime}: median {self.median_ms:.4f} ms, IQR {self.iqr_ms:.4f} ms "
                f"({100 * self.rel_iqr:.1f}%), n={self.n}, stop={self.stop_reason}")
        return text + (" [noisy]" if self.noisy else "")
