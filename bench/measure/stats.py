"""Latency statistics, computed in one place: `LatencyStats.from_samples(...)`.

Percentiles use linear interpolation between order statistics (Hyndman & Fan 1996, definition 7, the
default of numpy.percentile and R's quantile): for sorted x of length n and q in [0, 1],
h = (n - 1) q and P(q) = x[floor h] + (h - floor h) (x[floor h + 1] - x[floor h]).
IQR = P(0.75) - P(0.25). CV = sample standard deviation (n - 1 in the denominator) / mean.

Intervals (95%) are distribution-free order-statistic intervals for a median (Conover 1999, *Practical
Nonparametric Statistics*, 3rd ed., sec. 3.2): for n independent values, [x_(k), x_(n+1-k)] covers the
median with probability 1 - 2 P(Bin(n, 1/2) <= k - 1), k the largest rank keeping that >= 95%. Latency
samples are not independent (on a busy machine lag-1 autocorrelation is 0.5-0.7), so `median_interval`
applies it to the medians of contiguous batches of samples, the batching of simulation output analysis
(Schmeiser 1982, "Batch size effects in the analysis of simulation output", Oper. Res. 30(3)), and
`speedup_interval` to per-block-pair log-ratios (see `bench.measure.paired`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Sequence

import numpy as np

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


CONFIDENCE = 0.95
"""Confidence of every interval in a row (the median's and the speedup's)."""
MEDIAN_CI_BATCHES = 10
"""Batches of `median_interval`: the low end of Schmeiser's 10-30, because few long batches are nearly
independent under the autocorrelation seen: simulated coverage of AR(1) noise with rho = 0.7 is 94% at 60
samples and 97% at 300, where the plain order-statistic interval of the samples covers 72% and 67%
(tests/measure/test_measure_intervals.py)."""
MEDIAN_CI_MIN_BATCH = 3
"""Fewest samples per batch; with fewer samples there are fewer batches (and from 6 on, no interval)."""
MEDIAN_CI_METHOD = "batch_median_order_stat"
"""The name rows carry for `median_interval`'s method."""


@lru_cache(maxsize=1024)
def order_statistic_ranks(n: int, confidence: float = CONFIDENCE) -> Optional[tuple[int, int]]:
    """1-based ranks (k, n + 1 - k) of the distribution-free interval for the median of n iid values.

    k is the largest rank with P(Bin(n, 1/2) <= k - 1) <= (1 - confidence) / 2, so the coverage
    1 - 2 P(Bin(n, 1/2) <= k - 1) is at least `confidence`. None where no k works (n < 6 at 95%).
    """
    if n < 1:
        return None
    alpha = (1.0 - confidence) / 2.0
    log_half_n = n * math.log(0.5)
    cdf, k = 0.0, 0
    while k <= n // 2:
        pmf = math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + log_half_n)
        if cdf + pmf > alpha:
            break
        cdf += pmf
        k += 1
    return (k, n + 1 - k) if k >= 1 else None


def order_statistic_interval(values: Sequence[float],
                             confidence: float = CONFIDENCE) -> Optional[tuple[float, float]]:
    """[x_(k), x_(n+1-k)] of `values` taken as independent (ranks: `order_statistic_ranks`), or None."""
    ranks = order_statistic_ranks(len(values), confidence)
    if ranks is None:
        return None
    ordered = sorted(values)
    return ordered[ranks[0] - 1], ordered[ranks[1] - 1]


def batch_medians(samples: Sequence[float], batches: int) -> list[float]:
    """Medians of `batches` contiguous, near-equal batches (boundaries round(i n / batches)), in order.

    numpy's median (the same definition as `median`): the stop rules call this after every block.
    """
    values = np.asarray(samples, dtype=float)
    n = len(values)
    edges = [round(i * n / batches) for i in range(batches + 1)]
    return [float(np.median(values[edges[i]:edges[i + 1]])) for i in range(batches)]


def median_interval(samples_ms: Sequence[float], confidence: float = CONFIDENCE,
                    batches: int = MEDIAN_CI_BATCHES,
                    min_batch: int = MEDIAN_CI_MIN_BATCH) -> Optional[tuple[float, float]]:
    """95% interval of the median of autocorrelated samples (in measurement order), or None if too few.

    b = min(batches, n // min_batch) contiguous batches; their medians are close to independent when a
    batch is long against the correlation time, and each estimates the median; the order-statistic
    interval of the b batch medians (module docstring) is the answer, widened where needed to contain
    the pooled median (the point estimate a row reports). Needs b >= 6: 18 samples at least.
    """
    b = min(batches, len(samples_ms) // min_batch)
    if b < 1:
        return None
    interval = order_statistic_interval(batch_medians(samples_ms, b), confidence)
    if interval is None:
        return None
    point = float(np.median(np.asarray(samples_ms, dtype=float)))
    return min(interval[0], point), max(interval[1], point)


def relative_half_width(interval: Optional[tuple[float, float]], point: float) -> float:
    """(high - low) / (2 * point): the precision the stop rules compare with `target_rel_ci`; inf if none."""
    if interval is None or not point > 0:
        return math.inf
    return (interval[1] - interval[0]) / (2.0 * point)


SPEEDUP_CYCLE_PAIRS = 2
"""Block pairs per ABBA cycle (A B, B A): the mean log-ratio of a cycle cancels a linear drift."""
SPEEDUP_MIN_CYCLES = 6
"""Cycles from which their interval is taken too (with 6, [min, max] covers 96.9%)."""


def speedup_interval(first_samples_ms: Sequence[float], second_samples_ms: Sequence[float],
                     block_log_ratios: Sequence[float],
                     confidence: float = CONFIDENCE) -> tuple[float, Optional[tuple[float, float]]]:
    """The speedup (first / second) from paired blocks and its interval, or None if too few pairs.

    Each block pair (one block of each form, adjacent in time) gives r = log(median of its first-form
    block / median of its second-form block): drift slower than a pair cancels in it. The point is
    exp(median r), the interval the order-statistic interval of the r (module docstring), both from
    one estimator, so the point always lies inside. Where the ratio itself wanders (the other core's
    load slows the two forms unequally) neighbouring r are correlated and that interval is too
    narrow; so from `SPEEDUP_MIN_CYCLES` ABBA cycles on it is widened to hold the order-statistic
    interval of the cycles' mean r too (batch means over cycles, as `median_interval` batches samples).
    With no pairs the point is median(first) / median(second).
    """
    if not block_log_ratios:
        second = float(np.median(np.asarray(second_samples_ms, dtype=float)))
        first = float(np.median(np.asarray(first_samples_ms, dtype=float)))
        return (first / second if second > 0 else math.inf), None
    logs = np.asarray(block_log_ratios, dtype=float)
    point = math.exp(float(np.median(logs)))
    interval = order_statistic_interval(list(logs), confidence)
    if interval is None:
        return point, None
    cycles = len(logs) // SPEEDUP_CYCLE_PAIRS
    if cycles >= SPEEDUP_MIN_CYCLES:
        means = logs[:cycles * SPEEDUP_CYCLE_PAIRS].reshape(cycles, SPEEDUP_CYCLE_PAIRS).mean(axis=1)
        batch = order_statistic_interval(list(means), confidence)
        if batch is not None:
            interval = (min(interval[0], batch[0]), max(interval[1], batch[1]))
    return point, (math.exp(interval[0]), math.exp(interval[1]))


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
    holding that many calls, divided by it. `duration_s` is the wall time of the timed phase (for a
    pair, the phase both forms shared), `timed_s` the part of it inside this callable's timed blocks
    (the rest: the other form's blocks, stop checks). `warmup_converged` is False where the convergence
    warm-up hit its time cap; a fixed warm-up (the "cpu" regime) reports True.
    `median_ci_low_ms` / `median_ci_high_ms`: the 95% interval of the median by `median_ci_method`
    (`bench.measure.stats.median_interval`), None where there were too few samples (under 18).
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
    timed_s: Optional[float] = None
    median_ci_low_ms: Optional[float] = None
    median_ci_high_ms: Optional[float] = None
    median_ci_method: str = MEDIAN_CI_METHOD

    @classmethod
    def from_samples(cls, regime: str, samples_ms: Sequence[float], *, stop_reason: str,
                     warmup_iters: int = 0, first_call_ms: Optional[float] = None,
                     host_enqueue_ms: Optional[Sequence[float]] = None, warmup_converged: bool = True,
                     calls_per_sample: int = 1, duration_s: Optional[float] = None,
                     num_threads: Optional[int] = None, timed_s: Optional[float] = None) -> "LatencyStats":
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
        interval = median_interval(samples)
        return cls(
            regime=regime, samples_ms=samples, median_ms=p[50], mean_ms=mean, min_ms=ordered[0],
            max_ms=ordered[-1], p5_ms=p[5], p25_ms=p[25], p75_ms=p[75], p90_ms=p[90], p95_ms=p[95],
            p99_ms=p[99], iqr_ms=p[75] - p[25], cv=_coefficient_of_variation(samples, mean), n=len(samples),
            stop_reason=stop_reason, warmup_iters=warmup_iters, first_call_ms=first_call_ms,
            host_enqueue_ms_median=enqueue, warmup_converged=warmup_converged,
            calls_per_sample=calls_per_sample, duration_s=duration_s, num_threads=num_threads,
            timed_s=timed_s, median_ci_low_ms=interval[0] if interval else None,
            median_ci_high_ms=interval[1] if interval else None,
        )

    @property
    def rel_iqr(self) -> float:
        return self.iqr_ms / self.median_ms if self.median_ms > 0 else math.inf

    @property
    def median_ci_rel_half_width(self) -> float:
        """Half the interval's width over the median (inf without an interval): the stop rule's measure."""
        if self.median_ci_low_ms is None or self.median_ci_high_ms is None:
            return math.inf
        return relative_half_width((self.median_ci_low_ms, self.median_ci_high_ms), self.median_ms)

    @property
    def noisy(self) -> bool:
        return self.rel_iqr > NOISY_REL_IQR

    def summary(self) -> str:
        """One line for logs: median, spread, n and why sampling stopped."""
        ci = (f" [{self.median_ci_low_ms:.4f}, {self.median_ci_high_ms:.4f}]"
              if self.median_ci_low_ms is not None and self.median_ci_high_ms is not None else "")
        text = (f"{self.regime}: median {self.median_ms:.4f}{ci} ms, IQR {self.iqr_ms:.4f} ms "
                f"({100 * self.rel_iqr:.1f}%), n={self.n}, stop={self.stop_reason}")
        return text + (" [noisy]" if self.noisy else "")
