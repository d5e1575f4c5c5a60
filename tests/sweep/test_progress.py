"""The line printed when a cell finishes: labelled spread, and noisy cells marked as they end."""

from __future__ import annotations

from bench.sweep.driver.progress import summary_line
from tests.results.results_rows import row


def test_a_noisy_cell_is_marked_and_shows_its_spread():
    line = summary_line(row(latency_ms_median=3.2, latency_ms_p5=2.0, latency_ms_p90=6.5, latency_cv=0.41))
    assert line.startswith("ok") and "3.2 ms (p5-p90 2-6.5)" in line
    assert "NOISY (latency CV 41.0% > 5%)" in line  # an older row: no `noisy` value, the CV rule
    own = summary_line(row(latency_ms_median=3.2, latency_ms_iqr=0.64, latency_cv=0.01, noisy=True))
    assert "NOISY (IQR 20.0% of the median)" in own
    assert "NOISY" not in summary_line(row(latency_ms_median=3.2, latency_cv=0.41, noisy=False))


def test_a_steady_cell_is_not_marked():
    line = summary_line(row(latency_ms_median=3.2, latency_ms_p5=3.1, latency_ms_p90=3.3, latency_cv=0.01))
    assert "NOISY" not in line and "(p5-p90 3.1-3.3)" in line


def test_an_int8_cell_names_its_fp32_gate_and_shows_its_error_and_gain():
    line = summary_line(row(latency_ms_median=3.2, max_rel_err=6e-7, tolerance=1e-4, precision="int8",
                            int8_sqnr_db_vs_train_fp32=19.84, int8_speedup_vs_fp32_median=3.8))
    assert "fp32 gate 6e-07 <= 0.0001" in line and "int8 SQNR 19.8 dB" in line and "3.80x fp32" in line
    assert "fp32 gate" not in summary_line(row(latency_ms_median=3.2, max_rel_err=6e-7, tolerance=1e-4))
