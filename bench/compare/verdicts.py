"""Per-cell timing verdicts from raw samples: ratio of medians, bootstrap interval, rank test, FDR control.

For a cell measured in both runs, with baseline samples x and new samples y (latencies, ms):

- ratio r = median(y) / median(x); r > 1 means the new run is slower.
- 95% interval: percentile bootstrap of r, both medians resampled independently (`stats.bootstrap_medians`,
  `n_boot` replicates, fixed seed, so the same inputs always give the same table).
- Practical threshold t (default 5%), symmetric in log space: "slower" means r > 1 + t, "faster" means
  r < 1 / (1 + t), so a 5% slowdown undone reads as the same size of change.
- p-values: one-sided Mann-Whitney rank tests of y / (1 + t) against x ("y exceeds x by more than t",
  the null r <= 1 + t is tested at its boundary, where a pure multiplicative shift makes the test exact)
  and of y (1 + t) against x for "faster". The cell's p-value is min(1, 2 min(p_slow, p_fast)), valid
  whichever direction the data point to.
- Benjamini-Hochberg at false discovery rate q (default 0.05) over all cells timed in both runs.

Verdicts: SLOWER when the interval lies wholly above 1 + t AND the cell survives BH in the slow direction;
FASTER likewise below 1 / (1 + t); SAME when the interval lies wholly inside [1 / (1 + t), 1 + t];
AMBIGUOUS otherwise (the interval straddles a threshold, or lies beyond it without surviving BH, or the
cell has no raw samples). Requiring both the interval and the rank test is deliberately conservative: a
CI gate must not cry wolf, and a real slowdown of 20% with tens of samples passes both easily.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.compare.stats import (benjamini_hochberg, bootstrap_medians, mann_whitney_greater, normal_sf,
                                 percentile_interval)
from bench.usage import UsageError

SAME, FASTER, SLOWER, AMBIGUOUS = "SAME", "FASTER", "SLOWER", "AMBIGUOUS"
MISSING, NEW, UNTIMED = "MISSING", "NEW", "UNTIMED"
VERDICTS: tuple[str, ...] = (SLOWER, AMBIGUOUS, FASTER, SAME, MISSING, NEW, UNTIMED)
"""MISSING: timed in the baseline, absent or not timed in the new run. NEW: the reverse. UNTIMED: present
in both but timed in neither (skipped, oom, ...)."""


@dataclass(frozen=True)
class Settings:
    """How strict a comparison is; the defaults are the CI gate's."""

    threshold: float = 0.05
    fdr: float = 0.05
    n_boot: int = 2000
    seed: int = 0
    level: float = 0.95
    memory_tolerance_mib: float = 1.0

    def __post_init__(self) -> None:
        checks = {"threshold": 0 < self.threshold < 1, "fdr": 0 < self.fdr < 1, "n_boot": self.n_boot >= 100,
                  "level": 0 < self.level < 1, "memory_tolerance_mib": self.memory_tolerance_mib >= 0}
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise UsageError(f"invalid setting(s) {', '.join(bad)}: threshold, fdr and level lie in (0, 1), "
                             "n_boot >= 100, memory_tolerance_mib >= 0")

    @property
    def slow_limit(self) -> float:
        return 1.0 + self.threshold

    @property
    def fast_limit(self) -> float:
        return 1.0 / (1.0 + self.threshold)


@dataclass(frozen=True)
class TimingVerdicts:
    """Arrays over cells, aligned with the input lists."""

    ratio: np.ndarray
    ci_lo: np.ndarray
    ci_hi: np.ndarray
    p_value: np.ndarray
    q_value: np.ndarray
    verdict: np.ndarray
    note: np.ndarray


def medians(samples: Sequence[np.ndarray]) -> np.ndarray:
    return np.array([np.median(s) if len(s) else np.nan for s in samples], dtype=float)


def rank_p_values(base: Sequence[np.ndarray], new: Sequence[np.ndarray], settings: Settings) -> np.ndarray:
    """Per-cell p-value for "the ratio lies outside the threshold band" (see the module docstring)."""
    p = np.full(len(base), np.nan)
    for i, (x, y) in enumerate(zip(base, new)):
        if len(x) and len(y):
            p_slow = mann_whitney_greater(x, y / settings.slow_limit)
            p_fast = mann_whitney_greater(y / settings.fast_limit, x)
            p[i] = min(1.0, 2.0 * min(p_slow, p_fast))
    return p


def timing_verdicts(base: Sequence[np.ndarray], new: Sequence[np.ndarray], settings: Settings,
                    rng: np.random.Generator | None = None, replicates: np.ndarray | None = None,
                    fallback_ratio: np.ndarray | None = None) -> TimingVerdicts:
    """Verdicts for cells timed in both runs, aligned with the lists.

    `replicates`: (n_boot, n_cells) bootstrap ratios when the caller already drew the medians;
    `fallback_ratio`: summary-median ratios used where a side has no raw samples.
    """
    base = [np.asarray(s, dtype=float) for s in base]
    new = [np.asarray(s, dtype=float) for s in new]
    if replicates is None:
        rng = rng if rng is not None else np.random.default_rng(settings.seed)
        with np.errstate(divide="ignore", invalid="ignore"):
            replicates = (bootstrap_medians(new, settings.n_boot, rng)
                          / bootstrap_medians(base, settings.n_boot, rng))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = medians(new) / medians(base)
    if fallback_ratio is not None:
        ratio = np.where(np.isnan(ratio), fallback_ratio, ratio)
    lo, hi = percentile_interval(replicates, settings.level)
    p = rank_p_values(base, new, settings)
    rejected, q = benjamini_hochberg(p, settings.fdr)
    verdict, note = _classify(ratio, lo, hi, rejected, q, settings)
    return TimingVerdicts(ratio, lo, hi, p, q, verdict, note)


def _classify(ratio: np.ndarray, lo: np.ndarray, hi: np.ndarray, rejected: np.ndarray, q: np.ndarray,
              settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    n = len(ratio)
    verdict = np.full(n, AMBIGUOUS, dtype=object)
    note = np.full(n, "", dtype=object)
    pct = f"{settings.threshold:.0%}"
    for i in range(n):
        if math.isnan(lo[i]):
            note[i] = "no raw samples on one side: ratio of summary medians only"
        elif lo[i] > settings.slow_limit and rejected[i] and ratio[i] > 1:
            verdict[i] = SLOWER
        elif hi[i] < settings.fast_limit and rejected[i] and ratio[i] < 1:
            verdict[i] = FASTER
        elif lo[i] >= settings.fast_limit and hi[i] <= settings.slow_limit:
            verdict[i] = SAME
        elif lo[i] > settings.slow_limit or hi[i] < settings.fast_limit:
            note[i] = f"interval beyond {pct} but not significant after FDR control (q = {q[i]:.3g})"
        else:
            note[i] = f"interval straddles the {pct} threshold"
    return verdict, note


def log_normal_p_values(estimate: np.ndarray, replicates: np.ndarray, settings: Settings) -> np.ndarray:
    """Two-sided p-value for "ratio outside the band" from bootstrap replicates, on the log scale.

    z = (|log r| - log(1 + t)) / sd(log r*); p = min(1, 2 P(Z > z)). Used where no rank test applies (a
    ratio of ratios such as a speedup change); the bootstrap standard error makes it continuous, so it
    can reach the small values Benjamini-Hochberg needs with hundreds of tests.
    """
    p = np.full(len(estimate), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(replicates)
        usable = np.isfinite(logs).all(axis=0) & np.isfinite(np.log(estimate))
        if replicates.shape[0] < 2 or not usable.any():
            return p
        se = np.std(logs[:, usable], axis=0, ddof=1)
        z = (np.abs(np.log(estimate[usable])) - math.log(settings.slow_limit)) / se
    p[usable] = np.where(np.isfinite(z), np.minimum(1.0, 2.0 * normal_sf(np.nan_to_num(z))), np.nan)
    return p
