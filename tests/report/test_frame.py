"""The rules every figure relies on: what is drawn, what is flagged, which pairs give a speedup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from report_rows import frame, row, sweep_rows

from bench.report.frame import drawable, excluded, excluded_note, fix_axes, reference_batch, speedups


def test_throughput_and_bounds_follow_latency_percentiles():
    df = frame([row("repvgg_a0", "train", 8)])
    out = drawable(df).iloc[0]
    median, p5, p90 = 8.0, 8.0 * 0.95, 8.0 * 1.1
    assert out["throughput"] == pytest.approx(8 * 1000 / median)
    assert out["throughput_lo"] == pytest.approx(8 * 1000 / p90)
    assert out["throughput_hi"] == pytest.approx(8 * 1000 / p5)


def test_missing_percentiles_fall_back_to_iqr():
    df = frame([row("repvgg_a0", "train", 8, latency_ms_p5=None, latency_ms_p90=None)])
    out = drawable(df).iloc[0]
    assert out["throughput_lo"] == pytest.approx(8000 / (8.0 + 0.64 / 2))
    assert out["throughput_hi"] == pytest.approx(8000 / (8.0 - 0.64 / 2))


def test_failed_cells_are_excluded_and_named():
    df = frame(sweep_rows())
    assert set(drawable(df)["status"]) == {"ok", "mismatch"}
    assert sorted(excluded(df)["status"]) == ["error", "oom"]
    assert excluded_note(df) == "excluded 2 cell(s) (oom: 1, error: 1); listed in report.md"


def test_speedups_never_use_mismatched_or_failed_cells():
    df = frame(sweep_rows())
    pairs = speedups(df)
    keys = set(zip(pairs["model"], pairs["batch_size"]))
    assert ("repvgg_a1", 8) not in keys  # deploy mismatch
    assert ("repvgg_a0", 256) not in keys  # oom / error
    a0 = pairs[pairs["model"].eq("repvgg_a0") & pairs["batch_size"].eq(8)].iloc[0]
    assert a0["speedup"] == pytest.approx(1.5)
    # unpaired rows: both cells' median CIs (+-2%) combined in log space, and the interval named
    half = 1.959963984540054 * np.hypot(*[np.log(1.02 / 0.98) / (2 * 1.959963984540054)] * 2)
    assert a0["speedup_lo"] == pytest.approx(1.5 * np.exp(-half))
    assert a0["speedup_hi"] == pytest.approx(1.5 * np.exp(half))
    assert a0["speedup_interval"] == "95% CI from both cells' median CIs (unpaired)"


def test_throttled_pairs_are_kept_but_flagged():
    rows = [row("repvgg_a0", "train", 8), row("repvgg_a0", "deploy", 8, throttled=True)]
    pairs = speedups(frame(rows))
    assert list(pairs["flag"]) == ["throttled"]
    assert list(drawable(frame(rows))["flag"]) == ["", "throttled"]


def test_noisy_cells_are_flagged_and_flags_combine():
    rows = [row("repvgg_a0", "train", 8, latency_cv=0.08), row("repvgg_a0", "deploy", 8, throttled=True,
                                                                latency_cv=0.01),
            row("repvgg_a1", "train", 8, latency_cv=0.05), row("repvgg_a1", "deploy", 8, latency_cv=0.049)]
    assert list(drawable(frame(rows))["flag"]) == ["noisy", "throttled", "", ""]
    pairs = speedups(frame(rows)).set_index("model")
    assert pairs.loc["repvgg_a0", "flag"] == "throttled+noisy"
    assert pairs.loc["repvgg_a1", "flag"] == ""


def test_the_measurements_own_noise_judgement_wins_over_the_legacy_cv_rule():
    rows = [row("repvgg_a0", "train", 8, latency_cv=0.01, noisy=True),
            row("repvgg_a0", "deploy", 8, latency_cv=0.20, noisy=False),
            row("repvgg_a1", "train", 8, latency_cv=0.08)]  # an older row: no `noisy` value
    assert list(drawable(frame(rows))["flag"]) == ["noisy", "", "noisy"]


def test_timing_fields_carry_the_measurements_noise_judgement():
    from bench.measure.stats import LatencyStats
    from bench.sweep.worker.collect import timing_fields

    steady = LatencyStats.from_samples("cpu", [1.0, 1.01, 0.99, 1.0] * 10, stop_reason="max_iters")
    spread = LatencyStats.from_samples("cpu", [1.0, 2.0, 0.5, 1.5] * 10, stop_reason="max_iters")
    assert timing_fields(steady, 8)["noisy"] is False and timing_fields(spread, 8)["noisy"] is True


def test_cells_above_the_device_peak_are_flagged():
    rows = [row("repvgg_a0", "train", 8, device="cuda:0", pct_of_peak=100.5),
            row("repvgg_a0", "deploy", 8, device="cuda:0", pct_of_peak=99.0)]
    assert list(drawable(frame(rows))["flag"]) == ["over-peak", ""]
    assert list(speedups(frame(rows))["flag"]) == ["over-peak"]


def test_newest_run_wins_for_a_repeated_cell():
    old = row("repvgg_a0", "train", 8, run_id="smoke-ffffffff", started_at="2025-01-01T00:00:00+00:00")
    new = row("repvgg_a0", "train", 8, run_id="smoke-00000000", started_at="2025-02-01T00:00:00+00:00",
              scale=2.0)
    for order in ([new, old], [old, new]):
        out = drawable(frame(order))
        assert len(out) == 1 and out.iloc[0]["run_id"] == "smoke-00000000"


def test_fixed_axes_prefer_the_baseline_and_fall_back_to_the_most_common():
    rows = [row("repvgg_a0", "deploy", 8, precision="fp16"), row("repvgg_a0", "deploy", 8, precision="fp16",
            memory_format="channels_last"), row("repvgg_a0", "deploy", 8, precision="bf16")]
    chosen_rows, chosen = fix_axes(drawable(frame(rows)))
    assert chosen["precision"] == "fp16" and chosen["memory_format"] == "contiguous"
    assert len(chosen_rows) == 1


def test_reference_batch_prefers_the_papers_128():
    df = drawable(frame(sweep_rows()))
    assert reference_batch(df) == 128
    assert reference_batch(df[df["batch_size"] < 100]) == 8


def test_report_package_never_imports_torch():
    code = ("import sys; import bench.report, bench.report.command, bench.report.runs; "
            "from bench.report.paper import paper_figures; paper_figures(); "
            "from bench.report.registry import figure_names; figure_names(); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, env=env)
    assert result.returncode == 0, result.stderr


def test_error_bars_are_never_negative():
    from bench.report.frame import error_bars

    df = drawable(frame(sweep_rows()))
    assert (error_bars(df) >= 0).all() and np.isfinite(error_bars(df)).all()
