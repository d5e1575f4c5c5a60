"""Reports say what they show: flags with their own legend, resolution and runs, like-with-like Table 4,
only the run's own profiles, labelled intervals, and a truthful figure count."""

from __future__ import annotations

import pandas as pd
import pytest
from report_rows import frame, row, sweep_rows

from bench.cli import main
from bench.report import paper_table, render_figures, write_report
from bench.report.tables import kernel_count_table, repeated_cells
from bench.results.io import RunWriter


def test_a_noisy_cpu_heatmap_cell_is_labelled_noisy_not_throttled(tmp_path):
    df = frame(sweep_rows())
    df.loc[df["model"].eq("resnet18") & df["batch_size"].eq(8), "latency_cv"] = 0.41
    render_figures(df, tmp_path, ["speedup_heatmap"])
    svg = (tmp_path / "speedup_heatmap.svg").read_text(encoding="utf-8")
    assert "noisy: wide timing spread" in svg and "throttled" not in svg


def test_titles_carry_the_resolution(tmp_path):
    rows = [row(m, f, b, resolution=64 if m == "repvgg_a0" else 224)
            for m in ("repvgg_a0", "resnet18") for f in ("train", "deploy") for b in (1, 8)]
    render_figures(frame(rows), tmp_path, ["throughput_forms"])
    svg = (tmp_path / "throughput_forms.svg").read_text(encoding="utf-8")
    assert "repvgg_a0 64x64" in svg and "resnet18 224x224" in svg


def test_a_cell_measured_in_several_runs_shows_every_run_and_the_one_used(tmp_path):
    older = row("repvgg_a0", "deploy", 8, run_id="run-1", started_at="2026-01-01T00:00:00+00:00", scale=1.0)
    newer = row("repvgg_a0", "deploy", 8, run_id="run-2", started_at="2026-02-01T00:00:00+00:00", scale=0.5)
    other = row("repvgg_a0", "train", 8, run_id="run-2", started_at="2026-02-01T00:00:00+00:00")
    table = repeated_cells(frame([older, newer, other]))
    assert list(table["run_id"]) == ["run-1", "run-2"] and list(table["used"]) == [False, True]
    out = write_report(frame([older, newer, other]), tmp_path)
    assert "Cells measured in several runs" in out.report_md.read_text(encoding="utf-8")


def test_table4_ratio_only_at_the_papers_setting():
    table = paper_table(frame([row("repvgg_a0", "deploy", 8, resolution=64)]))
    assert table.loc[0, "batch_size"] == 8 and table.loc[0, "resolution"] == 64
    assert pd.isna(table.loc[0, "ratio_measured_to_paper"]), "a 64x64 batch-8 cell is not the paper's setting"
    same = paper_table(frame([row("repvgg_a0", "deploy", 128)]))
    assert same.loc[0, "ratio_measured_to_paper"] > 0


def test_kernel_counts_of_other_models_are_not_attached(tmp_path):
    files = []
    for model in ("repvgg_a0", "blog_repvgg"):
        path = tmp_path / f"{model}.csv"
        pd.DataFrame({"model": [model], "batch_size": [8], "precision": ["fp32"], "resolution": [224],
                      "category": ["convolution"], "count_per_forward_train": [44]}).to_csv(path, index=False)
        files.append(path)
    table = kernel_count_table(files, frame([row("repvgg_a0", "deploy", 8)]))
    assert list(table["model"]) == ["repvgg_a0"]


def test_every_interval_is_labelled(tmp_path):
    out = write_report(frame(sweep_rows()), tmp_path)
    text = out.report_md.read_text(encoding="utf-8")
    assert "the interval named in speedup_interval, as `bench compare` prints it" in text
    assert "95% CI from both cells' median CIs (unpaired)" in text


def test_compare_labels_its_interval_as_a_bootstrap_ci(tmp_path, capsys):
    from tests.results.results_rows import cells, write_run
    import numpy as np

    rng = np.random.default_rng(1)
    a = write_run(tmp_path / "h" / "a", cells(4), rng, run_id="a", hardware="h")
    b = write_run(tmp_path / "h" / "b", cells(4), rng, run_id="b", hardware="h")
    main(["compare", str(a), str(b), "--all"])
    out = capsys.readouterr().out
    assert "95% bootstrap CI" in out and "speedup intervals: 95% CI from both cells' median CIs" in out


def test_the_figure_count_over_two_hardware_is_per_page(tmp_path, capsys):
    for hardware, scale in (("cpu-a", 1.0), ("cpu-b", 2.0)):
        RunWriter(tmp_path / hardware / "r").extend(
            [(r, []) for r in sweep_rows(hardware=hardware, scale=scale) if r.run_id])
    assert main(["report", str(tmp_path / "cpu-a"), str(tmp_path / "cpu-b"), "--out", str(tmp_path / "o")]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("figures:"))
    assert "over 3 report pages" in line and "each page draws up to" in line


def test_the_memory_caption_matches_what_rss_measures(tmp_path):
    render_figures(frame(sweep_rows()), tmp_path, ["memory_forms"])
    svg = (tmp_path / "memory_forms.svg").read_text(encoding="utf-8")
    assert "cannot read lower" not in svg
    assert "import torch" in svg and "own y-axis" in svg


def test_labels_of_models_with_equal_parameters_do_not_overprint():
    from bench.report.figures_speed import label_offsets

    offsets = label_offsets([(11.7, 100.0), (11.7, 102.0), (11.69, 98.0), (50.0, 100.0)])
    assert len(set(offsets[:3])) == 3 and offsets[3] == offsets[0]


def test_speed_vs_top1_names_the_models_it_leaves_out(tmp_path):
    rows = [row(m, f, 8) for m in ("repvgg_a0", "resnet18") for f in ("train", "deploy")]
    df = frame(rows)
    df.loc[df["model"].eq("resnet18"), "model"] = "resnet18_custom"
    df = pd.concat([frame([row("repvgg_a0", "train", 8), row("repvgg_a0", "deploy", 8)]),
                    df[df["model"].eq("resnet18_custom")]], ignore_index=True)
    render_figures(df, tmp_path, ["speed_vs_top1"])
    svg = (tmp_path / "speed_vs_top1.svg").read_text(encoding="utf-8")
    assert "no published top-1" in svg and "resnet18_custom" in svg


def test_titles_name_the_runs_when_several_are_drawn(tmp_path):
    rows = [row("repvgg_a0", f, 8, run_id="run-1", started_at="2026-01-01T00:00:00+00:00") for f in ("train", "deploy")]
    rows += [row("resnet18", f, 8, run_id="run-2", started_at="2026-01-02T00:00:00+00:00") for f in ("train", "deploy")]
    render_figures(frame(rows), tmp_path, ["throughput_forms"])
    svg = (tmp_path / "throughput_forms.svg").read_text(encoding="utf-8")
    assert "runs run-1, run-2 (newest run per cell)" in svg
