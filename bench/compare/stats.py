"""Statistics for comparing timing samples: bootstrap medians, a rank test, Benjamini-Hochberg.

numpy only (no scipy dependency); everything is vectorised over cells.

Bootstrap of the median, drawn exactly and cheaply. Resampling n values with replacement from the sorted
sample x_(1) <= ... <= x_(n) is drawing n uniforms V and taking x_(ceil(n V)); the map is monotone, so the
j-th smallest resampled value is x_(ceil(n U_(j))) with U_(j) the j-th order statistic of n uniforms,
U_(j) ~ Beta(j, n - j + 1) (Efron & Tibshirani 1993, ch. 2; David & Nagaraja, Order Statistics, 2.2).
For odd n the resampled median is x_(ceil(n U_(m))), m = (n + 1) / 2. For even n it is the mean of the
m-th and (m+1)-th (m = n / 2); given U_(m) = u the other n - m uniforms are iid on (u, 1), so
U_(m+1) = u + (1 - u) * Beta(1, n - m). One or two Beta draws per replicate replace n index draws, so
thousands of resamples of hundreds of cells cost milliseconds, whatever the number of samples.

Rank test: Mann-Whitney U with tie correction and continuity correction, normal approximation
(Hollander, Wolfe & Chicken, Nonparametric Statistical Methods, 3rd ed., 4.1).

Multiple comparisons: Benjamini & Hochberg (1995), step-up, controls the false discovery rate at q for
independent or positively dependent tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

_ERFC = np.frompyfunc(math.erfc, 1, 1)


def normal_sf(z: np.ndarray | float) -> np.ndarray:
    """P(Z > z) for a standard normal, exact to double precision in the far tail (erfc, not 1 - cdf)."""
    return np.asarray(_ERFC(np.asarray(z, dtype=float) / math.sqrt(2.0)), dtype=float) / 2.0


def bootstrap_medians(samples: Sequence[np.ndarray], n_boot: int, rng: np.random.Generator,
                      chunk: int = 256) -> np.ndarray:
    """(n_boot, n_cells) bootstrap replicates of each cell's median (NaN for a cell without samples).

    Cells are drawn `chunk` at a time so the temporaries stay a few MiB for any number of cells.
    """
    out = np.full((n_boot, len(samples)), np.nan)
    live = [i for i, s in enumerate(samples) if len(s)]
    for start in range(0, len(live), chunk):
        cols = live[start:start + chunk]
        out[:, cols] = _median_replicates([np.asarray(samples[i], dtype=float) for i in cols], n_boot, rng)
    return out


def _median_replicates(samples: list[np.ndarray], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    sizes = np.array([len(s) for s in samples], dtype=np.int64)
    n = sizes.astype(float)
    flat = np.concatenate([np.sort(s) for s in samples])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    m = np.floor((n + 1) / 2)
    u1 = rng.beta(m, n - m + 1, size=(n_boot, len(samples)))
    u2 = u1.copy()
    even = np.flatnonzero(sizes % 2 == 0)
    if even.size:
        gap = rng.beta(1.0, n[even] - m[even], size=(n_boot, even.size))
        u2[:, even] = u1[:, even] + (1.0 - u1[:, even]) * gap

    def pick(u: np.ndarray) -> np.ndarray:
        k = np.clip(np.ceil(n * u), 1, n).astype(np.int64) - 1
        return flat[offsets + k]

    return (pick(u1) + pick(u2)) / 2.0


def percentile_interval(replicates: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Per-column percentile interval of bootstrap replicates (NaN columns give NaN bounds)."""
    alpha = (1.0 - level) / 2.0
    lo, hi = np.full(replicates.shape[1], np.nan), np.full(replicates.shape[1], np.nan)
    ok = ~np.isnan(replicates).any(axis=0)
    if ok.any():
        lo[ok], hi[ok] = np.quantile(replicates[:, ok], [alpha, 1.0 - alpha], axis=0)
    return lo, hi


def mann_whitney_greater(x: np.ndarray, y: np.ndarray) -> float:
    """One-sided p-value of Mann-Whitney U for "y tends to be larger than x" (normal approximation).

    U = #{(i, j): y_j > x_i} + #{y_j == x_i} / 2; under H0 E[U] = n1 n2 / 2 and
    Var[U] = n1 n2 / 12 * (N + 1 - sum(t^3 - t) / (N (N - 1))) with t the sizes of tied groups.
    """
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        return float("nan")
    xs = np.sort(x)
    below = np.searchsorted(xs, y, side="left")
    below_or_equal = np.searchsorted(xs, y, side="right")
    u = float(np.sum(below + below_or_equal)) / 2.0
    total = n1 + n2
    _, ties = np.unique(np.concatenate([x, y]), return_counts=True)
    tie_term = float(np.sum(ties.astype(float) ** 3 - ties)) / (total * (total - 1)) if total > 1 else 0.0
    var = n1 * n2 / 12.0 * (total + 1 - tie_term)
    if var <= 0:
        return 1.0
    z = (u - n1 * n2 / 2.0 - 0.5) / math.sqrt(var)
    return float(normal_sf(z))


def benjamini_hochberg(p_values: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    """(rejected, adjusted p) by the Benjamini-Hochberg step-up rule at false discovery rate q.

    Sort the m p-values, find the largest k with p_(k) <= k q / m, reject the k smallest. The adjusted
    p-value is min over j >= i of m p_(j) / j, capped at 1. NaN p-values take no part (never rejected).
    """
    p = np.asarray(p_values, dtype=float)
    rejected = np.zeros(p.shape, dtype=bool)
    adjusted = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    if m == 0:
        return rejected, adjusted
    order = valid[np.argsort(p[valid], kind="stable")]
    ranked = p[order]
    scaled = ranked * m / np.arange(1, m + 1)
    adjusted[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    passing = np.flatnonzero(ranked <= q * np.arange(1, m + 1) / m)
    if passing.size:
        rejected[order[: passing[-1] + 1]] = True
    return rejected, adjusted


def wilson_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927; z = 1.96 at 95%)."""
    if trials == 0:
        return (float("nan"), float("nan"))
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    phat = successes / trials
    denom = 1 + z * z / trials
    centre = (phat + z * z / (2 * trials)) / denom
    half = z * math.sqrt(phat * (1 - phat) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
