"""LatencyStats statistics against numpy on known samples, and the pure stopping rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.measure.stats import LatencyStats, percentile, relative_iqr
from bench.measure.timing import TimingConfig, stop_reason

SAMPLE_SETS = [
    [1.0],
    [2.0, 1.0],
    [3.1, 1.2, 5.5, 2.2, 9.9, 4.4, 0.7],
    list(np.random.default_rng(0).lognormal(mean=1.0, sigma=0.3, size=1001)),
    [5.0] * 7 + [50.0],
]


@pytest.mark.parametrize("samples", SAMPLE_SETS)
def test_statistics_match_numpy(samples):
    stats = LatencyStats.from_samples("cpu", samples, stop_reason="converged", host_enqueue_ms=samples)
    arr = np.asarray(samples)
    expected = {
        "median_ms": np.median(arr), "mean_ms": arr.mean(), "min_ms": arr.min(), "max_ms": arr.max(),
        "p5_ms": np.percentile(arr, 5), "p25_ms": np.percentile(arr, 25), "p75_ms": np.percentile(arr, 75),
        "p90_ms": np.percentile(arr, 90), "p95_ms": np.percentile(arr, 95), "p99_ms": np.percentile(arr, 99),
        "iqr_ms": np.percentile(arr, 75) - np.percentile(arr, 25), "host_enqueue_ms_median": np.median(arr),
    }
    for name, value in expected.items():
        assert getattr(stats, name) == pytest.approx(value, rel=1e-12, abs=1e-12), name
    if len(samples) > 1:
        assert stats.cv == pytest.approx(arr.std(ddof=1) / arr.mean(), rel=1e-12)
    else:
        assert stats.cv is None
    assert stats.n == len(samples)
    assert stats.samples_ms == tuple(samples)


def test_samples_keep_measurement_order():
    stats = LatencyStats.from_samples("cpu", [3.0, 1.0, 2.0], stop_reason="timeout")
    assert stats.samples_ms == (3.0, 1.0, 2.0)
    assert stats.host_enqueue_ms_median is None


def test_empty_or_invalid_samples_are_refused():
    with pytest.raises(ValueError, match="no samples"):
        LatencyStats.from_samples("pipelined", [], stop_reason="converged")
    with pytest.raises(ValueError, match="negative or non-finite"):
        LatencyStats.from_samples("pipelined", [1.0, math.nan], stop_reason="converged")
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 1.5)


def test_relative_iqr_and_noise_flag():
    values = [10.0, 10.0, 10.0, 10.0, 12.0, 14.0, 16.0, 18.0]
    arr = np.asarray(values)
    assert relative_iqr(values) == pytest.approx(
        (np.percentile(arr, 75) - np.percentile(arr, 25)) / np.median(arr))
    stats = LatencyStats.from_samples("cpu", values, stop_reason="timeout")
    assert stats.noisy and "noisy" in stats.summary()
    assert not LatencyStats.from_samples("cpu", [5.0] * 4, stop_reason="converged").noisy


def test_stop_rule_converges_on_the_precision_of_the_median():
    config = TimingConfig(min_samples=10, min_time_s=0.5, target_rel_ci=0.01, timeout_s=2.0, max_samples=500)
    steady = [1.0] * 30
    assert stop_reason(steady[:9], 1.0, config) is None  # too few samples
    assert stop_reason(steady, 0.4, config) is None  # too little time
    assert stop_reason(steady, 0.6, config) == "converged"
    assert stop_reason(steady[:12], 0.6, config) is None  # no interval below 18 samples: not precise yet
    assert stop_reason(steady[:12], 2.0, config) == "timeout"


def test_stop_rule_measures_precision_not_spread():
    """Wide but stationary samples converge once the median is pinned; a drifting median does not."""
    config = TimingConfig(min_samples=10, min_time_s=0.0, target_rel_ci=0.02, timeout_s=2.0, max_samples=10_000)
    wide = [1.0, 2.0, 3.0] * 300  # IQR / median = 100%, every batch median exactly 2
    assert relative_iqr(wide) > 0.5
    assert stop_reason(wide, 0.1, config) == "converged"
    drifting = [1.0 + i / 100 for i in range(300)]  # IQR / median small, but the median moves
    assert stop_reason(drifting, 0.1, config) is None
    assert stop_reason(drifting, 2.0, config) == "timeout"


def test_a_timeout_never_stops_below_min_samples():
    config = TimingConfig(min_samples=20, min_time_s=0.0, target_rel_ci=0.01, timeout_s=1.0)
    assert stop_reason([1.0, 2.0] * 9, 100.0, config) is None
    assert stop_reason([1.0, 2.0] * 10, 100.0, config) == "timeout"


def test_max_samples_wins_over_every_other_rule():
    config = TimingConfig(min_samples=10, min_time_s=0.5, target_rel_ci=0.0, timeout_s=2.0, max_samples=50)
    assert stop_reason([1.0, 2.0] * 25, 0.1, config) == "max_samples"
