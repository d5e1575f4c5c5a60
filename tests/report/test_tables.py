"""Tables: Table 4 against the paper, speedups, flagged and excluded cells, Markdown rendering, report.md."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from report_rows import frame, row, sweep_rows

from bench.report import markdown_table, paper_table, write_report
from bench.report.paper import paper_figures
from bench.report.tables import excluded_table, flagged_table, kernel_count_files, speedup_table


def test_paper_figures_come_from_the_models_package_without_torch():
    paper = paper_figures().set_index("model")
    assert paper.loc["repvgg_a0", "paper_top1"] == pytest.approx(72.41)
    assert paper.loc["resnet18", "paper_speed_1080ti_b128"] == pytest.approx(2442)


def test_paper_columns_recorded_by_the_sweep_take_precedence():
    df = frame([row("repvgg_a0", "deploy", 128)]).assign(paper_top1=50.0, paper_speed_1080ti_b128=100.0)
    table = paper_table(df)
    assert table.loc[0, "speed_1080ti_paper_samples_s"] == 100.0
    assert table.loc[0, "ratio_measured_to_paper"] == pytest.approx(table.loc[0, "speed_samples_s"] / 100.0)


def test_table4_uses_deploy_form_at_batch_128_and_divides_by_the_paper():
    table = paper_table(frame(sweep_rows())).set_index("model")
    a0 = table.loc["repvgg_a0"]
    assert a0["form"] == "deploy" and a0["batch_size"] == 128 and a0["precision"] == "fp32"
    assert a0["speed_samples_s"] == pytest.approx(128 * 1000 / (128 / 1.5))
    assert a0["ratio_measured_to_paper"] == pytest.approx(a0["speed_samples_s"] / 3256)
    assert a0["speed_lo_samples_s"] < a0["speed_samples_s"] < a0["speed_hi_samples_s"]


def test_table4_falls_back_to_the_largest_batch_and_keeps_unpublished_models():
    rows = [row("repvgg_a0", "deploy", 8), row("repvgg_a0", "deploy", 16), row("repvgg_a0", "train", 16)]
    table = paper_table(frame(rows))
    assert list(table["batch_size"]) == [16] and list(table["form"]) == ["deploy"]


def test_markdown_table_escapes_and_blanks_missing():
    text = markdown_table(pd.DataFrame({"a": ["x|y", None], "b": [1.23456, math.nan]}))
    lines = text.strip().splitlines()
    assert lines[0] == "| a | b |" and lines[1] == "| --- | --- |"
    assert lines[2] == "| x\\|y | 1.23 |" and lines[3] == "|  |  |"
    assert markdown_table(pd.DataFrame()) == "_(none)_\n"


def test_speedup_flagged_and_excluded_tables():
    df = frame(sweep_rows())
    assert len(speedup_table(df)) == 8  # 3 models x 3 batches, minus repvgg_a1 at batch 8 (mismatch)
    flagged = flagged_table(df)
    assert list(flagged["flag"]) == ["mismatch"] and flagged.loc[0, "max_abs_err"] == 0.5
    excluded = excluded_table(df)
    assert set(excluded["status"]) == {"oom", "error"}
    assert all(len(e) <= 120 for e in excluded["error"])


def test_report_md_links_figures_and_lists_exclusions(tmp_path):
    out = write_report(frame(sweep_rows()), tmp_path / "report")
    text = out.report_md.read_text(encoding="utf-8")
    assert "![throughput_forms](throughput_forms.png)" in text
    assert "Figures not drawn:" in text and "`pct_of_peak`" in text
    assert "## Excluded cells" in text and "| oom |" in text
    for name in ("paper_table4.csv", "paper_table4.md", "speedups.csv", "excluded.csv", "flagged.csv"):
        assert (tmp_path / "report" / name).is_file()
    for link in [line.split("](")[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]:
        assert (tmp_path / "report" / link).is_file()


def test_report_over_two_hardware_writes_a_page_each(tmp_path):
    df = pd.concat([frame(sweep_rows()), frame(sweep_rows(hardware="other-cpu", scale=2.0))])
    out = write_report(df, tmp_path)
    assert set(out.sub_reports) == {"test-cpu", "other-cpu"}
    assert (tmp_path / "hardware_comparison.png").is_file()
    assert "[other-cpu](other-cpu/report.md)" in out.report_md.read_text(encoding="utf-8")
    assert (tmp_path / "other-cpu" / "throughput_forms.png").is_file()


def test_kernel_count_tables_are_found_next_to_the_runs(tmp_path):
    folder = tmp_path / "cpu-x" / "traces" / "repvgg_a0-train-vs-deploy-b2-fp32"
    folder.mkdir(parents=True)
    pd.DataFrame({"category": ["convolution"], "count_per_forward_train": [44.0],
                  "count_per_forward_deploy": [22.0]}).to_csv(folder / "kernel_counts.csv", index=False)
    assert kernel_count_files([tmp_path / "cpu-x"]) == [folder / "kernel_counts.csv"]
    out = write_report(frame(sweep_rows()), tmp_path / "r", hardware_dirs=[tmp_path / "cpu-x"])
    assert "Kernel / operator counts" in out.report_md.read_text(encoding="utf-8")
