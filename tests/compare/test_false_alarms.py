"""False alarms under noise: Benjamini-Hochberg keeps whole comparisons of 100 cells from crying wolf.

Statistical tests on generated lognormal noise with fixed seeds. The bounds hold with a wide margin: the
boundary case is the worst one the method allows (every cell truly exactly 5% slower, where each cell's
rank test is exact), and BH at q = 0.05 then bounds the chance of any SLOWER by 0.05.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.compare.falsealarm import false_alarm_rate
from bench.results.schema import AXES
from bench.compare.verdicts import SLOWER, Settings, timing_verdicts

TRIALS, CELLS, SAMPLES, SIGMA = 200, 100, 20, 0.05


def _simulate(true_ratio: float, seed: int) -> tuple[float, float]:
    """(fraction of comparisons with any SLOWER, fraction where an interval alone would cross +5%)."""
    rng = np.random.default_rng(seed)
    settings = Settings(n_boot=500)
    any_slower = any_ci_alarm = 0
    for _ in range(TRIALS):
        base = [rng.lognormal(0.0, SIGMA, SAMPLES) for _ in range(CELLS)]
        new = [rng.lognormal(np.log(true_ratio), SIGMA, SAMPLES) for _ in range(CELLS)]
        v = timing_verdicts(base, new, settings, rng)
        any_slower += bool(np.any(v.verdict == SLOWER))
        any_ci_alarm += bool(np.any(v.ci_lo > settings.slow_limit))
    return any_slower / TRIALS, any_ci_alarm / TRIALS


def test_aa_comparisons_of_100_cells_almost_never_report_slower() -> None:
    rate, _ = _simulate(true_ratio=1.0, seed=11)
    assert rate <= 0.01


def test_bh_bounds_false_alarms_at_the_threshold_where_intervals_alone_fail() -> None:
    rate, interval_only = _simulate(true_ratio=1.05, seed=12)
    assert rate <= 0.10
    assert interval_only >= 0.5, "the boundary case must be hard, or this test shows nothing"


def _samples_frame(rng: np.random.Generator, cells: int, n: int, drift: float = 1.0) -> pd.DataFrame:
    """SAMPLE_COLUMNS rows for `cells` cells of n samples; the second half of each cell scaled by `drift`."""
    frames = []
    for i in range(cells):
        values = rng.lognormal(np.log(1.0 + i), SIGMA, n)
        values[n // 2:] *= drift
        axes = dict(model=f"net{i}", form="deploy", mode="infer", batch_size=8, precision="fp32",
                    memory_format="contiguous", runtime="eager", resolution=224)
        frames.append(pd.DataFrame({"run_id": "run", **axes, "sample_index": np.arange(n), "latency_ms": values}))
    df = pd.concat(frames, ignore_index=True)
    assert set(AXES) <= set(df.columns)
    return df


def test_false_alarm_rate_from_recorded_samples() -> None:
    rng = np.random.default_rng(5)
    estimate = false_alarm_rate(_samples_frame(rng, cells=30, n=40), n_trials=30, settings=Settings(n_boot=500))
    assert estimate.n_cells == 30 and estimate.n_trials == 30
    assert estimate.trials_with_slower == 0 and estimate.rate == 0.0
    lo, hi = estimate.rate_interval
    assert lo == pytest.approx(0.0, abs=1e-12) and 0.0 < hi < 0.15
    assert "A/A false-alarm rate (random split, 30 cells, 30 trials" in str(estimate)


def test_time_ordered_halves_expose_drift_that_random_halves_hide() -> None:
    frame = _samples_frame(np.random.default_rng(6), cells=10, n=40, drift=1.25)
    settings = Settings(n_boot=500)
    halves = false_alarm_rate(frame, settings=settings, split="halves")
    assert halves.n_trials == 1 and halves.slower_cells == 10
    shuffled = false_alarm_rate(frame, n_trials=10, settings=settings, split="random")
    assert shuffled.trials_with_slower == 0
    with pytest.raises(ValueError, match="split 'odd' is unknown; known: random, halves"):
        false_alarm_rate(frame, split="odd")
