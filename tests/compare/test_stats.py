"""The statistics against direct computations: bootstrap medians, Mann-Whitney, Benjamini-Hochberg."""

from __future__ import annotations

import numpy as np
import pytest

from bench.compare.stats import (benjamini_hochberg, bootstrap_medians, mann_whitney_greater, normal_sf,
                                 wilson_interval)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 10])
def test_order_statistic_bootstrap_has_the_distribution_of_resampling(n: int) -> None:
    """Exact law of the resampled median by enumeration (all n**n index tuples for small n) vs the draws."""
    rng = np.random.default_rng(n)
    x = rng.lognormal(0, 0.3, n)
    draws = bootstrap_medians([x], 100_000, rng)[:, 0]
    if n <= 7:
        every = np.stack(np.meshgrid(*[np.arange(n)] * n, indexing="ij")).reshape(n, -1).T
        exact = np.median(x[every], axis=1)
    else:
        exact = np.median(x[rng.integers(0, n, (200_000, n))], axis=1)
    for value in np.unique(exact):
        assert abs(np.mean(draws == value) - np.mean(exact == value)) < 0.006


def test_bootstrap_medians_handles_cells_without_samples_and_many_cells() -> None:
    rng = np.random.default_rng(0)
    samples = [rng.normal(10, 1, 30), np.zeros(0), rng.normal(5, 1, 31)] * 200
    boot = bootstrap_medians(samples, 500, rng, chunk=64)
    assert boot.shape == (500, 600)
    assert np.isnan(boot[:, 1]).all() and not np.isnan(boot[:, 0]).any()
    assert abs(np.mean(boot[:, 0]) - np.median(samples[0])) < 0.3


def _mann_whitney_direct(x: np.ndarray, y: np.ndarray) -> float:
    """U by comparing every pair; tie-corrected variance from the pooled ranks' tie groups."""
    u = sum((yj > xi) + 0.5 * (yj == xi) for xi in x for yj in y)
    n1, n2 = len(x), len(y)
    _, t = np.unique(np.concatenate([x, y]), return_counts=True)
    big_n = n1 + n2
    var = n1 * n2 / 12 * ((big_n + 1) - np.sum(t**3 - t) / (big_n * (big_n - 1)))
    return float(normal_sf((u - n1 * n2 / 2 - 0.5) / np.sqrt(var)))


def test_mann_whitney_matches_the_pairwise_definition_with_ties() -> None:
    rng = np.random.default_rng(3)
    for shift in (0.0, 0.3, 1.0):
        x = np.round(rng.normal(0, 1, 23), 1)
        y = np.round(rng.normal(shift, 1, 31), 1)
        assert mann_whitney_greater(x, y) == pytest.approx(_mann_whitney_direct(x, y), rel=1e-12)
    assert mann_whitney_greater(np.arange(20.0), np.arange(20.0) + 100) < 1e-7
    assert mann_whitney_greater(np.arange(20.0) + 100, np.arange(20.0)) > 0.999


def test_normal_sf_is_accurate_in_the_tail() -> None:
    assert normal_sf(0.0) == pytest.approx(0.5)
    assert normal_sf(1.959963984540054) == pytest.approx(0.025, rel=1e-9)
    assert normal_sf(10.0) == pytest.approx(7.619853024160527e-24, rel=1e-9)


def test_benjamini_hochberg_step_up_and_adjusted_values() -> None:
    rejected, adjusted = benjamini_hochberg(np.array([0.01, 0.02, 0.04, 0.5]), q=0.05)
    assert rejected.tolist() == [True, True, False, False]
    np.testing.assert_allclose(adjusted, [0.04, 0.04, 0.04 * 4 / 3, 0.5])
    rejected, _ = benjamini_hochberg(np.array([0.04, 0.005, 0.03, 0.01]), q=0.05)
    assert rejected.all()
    rejected, adjusted = benjamini_hochberg(np.array([np.nan, 0.001, 0.9]), q=0.05)
    assert rejected.tolist() == [False, True, False] and np.isnan(adjusted[0])


def test_wilson_interval() -> None:
    lo, hi = wilson_interval(0, 10)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(5, 100)
    assert lo == pytest.approx(0.0215, abs=1e-3) and hi == pytest.approx(0.1118, abs=1e-3)
