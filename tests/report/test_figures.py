"""Figures: each one draws (PNG + SVG) or says why not; titles, axis labels, flags and speedup rules hold.

Rows are hand-built `Result`s (tests/report/report_rows.py) so that the drawing code is tested on known
numbers; the real-sweep path is exercised by test_command.py and test_notebooks.py. The SVGs keep their
text as text, so labels can be checked by reading them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from report_rows import frame, row, sweep_rows

from bench.report import figure_names, get_figure, render_figures
from bench.report.figures_compare import memory_column
from bench.report.frame import drawable
from bench.report.registry import FigureSkipped, register_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _gpu_rows() -> list:
    """A second hardware with extra precisions and memory formats for repvgg_a0."""
    rows = sweep_rows(hardware="nvidia-test-gpu", device="cuda:0", scale=0.05)
    for k, (precision, fmt) in enumerate([("fp16", "contiguous"), ("fp16", "channels_last")], start=2):
        rows += [row("repvgg_a0", form, batch, hardware="nvidia-test-gpu", device="cuda:0",
                     precision=precision, memory_format=fmt, scale=0.05 / k)
                 for form in ("train", "deploy") for batch in (1, 8, 128)]
    return rows


@pytest.fixture(scope="module")
def cpu_df() -> pd.DataFrame:
    df = frame(sweep_rows())
    throttled = df["model"].eq("resnet18") & df["form"].eq("deploy") & df["batch_size"].eq(128)
    df.loc[throttled, "throttled"] = True
    return df


@pytest.fixture(scope="module")
def gpu_df() -> pd.DataFrame:
    return frame(_gpu_rows())


@pytest.fixture(scope="module")
def cpu_figures(cpu_df, tmp_path_factory):
    out = tmp_path_factory.mktemp("cpu")
    return out, render_figures(cpu_df, out)


@pytest.fixture(scope="module")
def gpu_figures(gpu_df, tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu")
    return out, render_figures(gpu_df, out)


def _svg(out: Path, name: str) -> str:
    return (out / f"{name}.svg").read_text(encoding="utf-8")


def test_every_figure_is_drawn_or_says_why(cpu_figures, gpu_figures):
    for _, rendered in (cpu_figures, gpu_figures):
        assert set(rendered.paths) | set(rendered.skipped) == set(figure_names())
        assert all(reason.strip() for reason in rendered.skipped.values())
        for paths in rendered.paths.values():
            assert sorted(p.suffix for p in paths) == [".png", ".svg"]
            assert paths[0].read_bytes().startswith(PNG_MAGIC) or paths[1].read_bytes().startswith(PNG_MAGIC)
            assert all(p.stat().st_size > 5000 for p in paths)


def test_gpu_rows_draw_the_gpu_only_figures(gpu_figures):
    _, rendered = gpu_figures
    assert {"pct_of_peak", "precision_format", "memory_forms"} <= set(rendered.paths)


def test_cpu_rows_skip_what_does_not_apply(cpu_figures):
    _, rendered = cpu_figures
    assert "pct_of_peak" in rendered.skipped
    assert "precision_format" in rendered.skipped
    assert rendered.skipped["hardware_comparison"].startswith("only one hardware")


@pytest.mark.parametrize("name", ["throughput_forms", "throughput_vs_batch", "speed_vs_params",
                                  "speedup_heatmap", "memory_forms"])
def test_titles_name_hardware_and_precision(cpu_figures, name):
    svg = _svg(cpu_figures[0], name)
    assert "test-cpu" in svg and "fp32" in svg


@pytest.mark.parametrize("name,label", [
    ("throughput_forms", "throughput (samples/s)"), ("throughput_vs_batch", "batch size"),
    ("speed_vs_params", "parameters (millions"), ("memory_forms", "peak resident set size (MiB)"),
    ("speedup_heatmap", "speedup = train latency / deploy latency (x)"),
])
def test_axes_carry_labels_with_units(cpu_figures, name, label):
    assert label in _svg(cpu_figures[0], name)


def test_timing_figures_say_what_the_error_bars_are(cpu_figures):
    for name in ("throughput_forms", "throughput_vs_batch", "speed_vs_params"):
        assert "p5-p90" in _svg(cpu_figures[0], name)


def test_flagged_cells_get_legend_entries(cpu_figures):
    svg = _svg(cpu_figures[0], "throughput_vs_batch")
    assert "throttled" in svg and "mismatch" in svg
    assert "throttled" in _svg(cpu_figures[0], "throughput_forms")


def test_excluded_cells_are_noted_on_the_figure(cpu_figures):
    assert "excluded 2 cell(s) (oom: 1, error: 1)" in _svg(cpu_figures[0], "throughput_forms")


def test_heatmap_has_no_speedup_for_a_mismatched_deploy_cell(cpu_figures):
    svg = _svg(cpu_figures[0], "speedup_heatmap")
    # repvgg_a1's gain is 1.6: batches 1 and 128 are ok pairs; batch 8's deploy cell mismatched.
    assert len(re.findall(r">1\.60x", svg)) == 2
    assert ">mismatch<" in svg


def test_memory_definition_follows_the_device(cpu_df, gpu_df):
    assert memory_column(drawable(cpu_df)) == "peak_rss_mib"
    assert memory_column(drawable(gpu_df)) == "peak_allocated_mib"


def test_hardware_comparison_needs_two_hardware(cpu_df, gpu_df, tmp_path):
    figure = get_figure("hardware_comparison")
    with pytest.raises(FigureSkipped, match="only one hardware"):
        figure(cpu_df, tmp_path)
    paths = figure(pd.concat([cpu_df, gpu_df], ignore_index=True), tmp_path)
    svg = (tmp_path / "hardware_comparison.svg").read_text(encoding="utf-8")
    assert len(paths) == 2 and "test-cpu" in svg and "nvidia-test-gpu" in svg
    assert "speedup = train latency / deploy latency" in svg  # the panel said "deploy / train"


def test_hardware_comparison_takes_its_speedups_at_the_resolution_it_draws(cpu_df, gpu_df, tmp_path):
    """A model also measured at a second resolution on one hardware: the speedup panel takes the pairs at
    the resolution the throughput panels draw (it raised 'cannot reindex on an axis with duplicate
    labels', which broke the hardware notebook on the committed results)."""
    other = frame([row("repvgg_a0", form, 128, resolution=64) for form in ("train", "deploy")])
    paths = get_figure("hardware_comparison")(pd.concat([cpu_df, gpu_df, other], ignore_index=True), tmp_path)
    assert len(paths) == 2


def test_per_hardware_figures_refuse_mixed_hardware(cpu_df, gpu_df, tmp_path):
    with pytest.raises(FigureSkipped, match="several hardware"):
        get_figure("throughput_forms")(pd.concat([cpu_df, gpu_df]), tmp_path)


def test_nothing_to_draw_is_a_skip_not_an_empty_plot(tmp_path):
    failed = frame([row("repvgg_a0", "train", 8, status="oom"),
                    row("repvgg_a0", "deploy", 8, status="error")])
    rendered = render_figures(failed, tmp_path)
    assert not rendered.paths and not list(tmp_path.iterdir())


def test_registry_names_unknown_figures_and_refuses_duplicates():
    with pytest.raises(KeyError, match="figure 'nope' is unknown; known: .*throughput_forms"):
        get_figure("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_figure("throughput_forms")(lambda df, out: [])
