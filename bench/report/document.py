"""`report.md`: one page per hardware linking every figure and table, and saying what was left out and why.

Several hardware in one dataframe -> one sub-report per hardware in `<out>/<hardware>/` plus a top page
with the hardware comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.report.registry import Rendered, render_figures
from bench.results.table_writer import markdown_table
from bench.report.int8 import WEIGHTS_CAVEAT, int8_table
from bench.report.runtimes import runtime_table
from bench.report.tables import (excluded_table, flagged_table, kernel_count_files, kernel_count_table,
                                 paper_table, repeated_cells, speedup_table)

SINGLE_HARDWARE_FIGURES_EXCLUDE = ("hardware_comparison",)


@dataclass
class ReportOutput:
    """Where the report went: its Markdown page, the figures, the tables, sub-reports per hardware."""

    report_md: Path
    rendered: Rendered
    tables: dict[str, Path] = field(default_factory=dict)
    sub_reports: dict[str, "ReportOutput"] = field(default_factory=dict)


def write_report(df: pd.DataFrame, out_dir: Path, hardware_dirs: list[Path] | None = None) -> ReportOutput:
    """Figures, tables and report.md for a summary dataframe (one run, one hardware or several)."""
    out_dir = Path(out_dir)
    hardware = sorted(df["hardware"].dropna().unique())
    if len(hardware) <= 1:
        return _single(df, out_dir, hardware_dirs or [])
    subs = {
        hw: _single(df[df["hardware"].eq(hw)], out_dir / hw,
                    [d for d in (hardware_dirs or []) if d.name == hw])
        for hw in hardware
    }
    rendered = render_figures(df, out_dir, ["hardware_comparison"])
    lines = ["# RepBench report: hardware comparison", "", _runs_line(df), ""]
    lines += _figure_lines(rendered, out_dir)
    lines += ["## Per-hardware reports", ""]
    lines += [f"- [{hw}]({hw}/report.md)" for hw in subs] + [""]
    tables = _write_tables(df, out_dir, [], lines)
    report = out_dir / "report.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    return ReportOutput(report, rendered, tables, subs)


def _single(df: pd.DataFrame, out_dir: Path, hardware_dirs: list[Path]) -> ReportOutput:
    from bench.report.registry import figure_names

    names = [n for n in figure_names() if n not in SINGLE_HARDWARE_FIGURES_EXCLUDE]
    rendered = render_figures(df, out_dir, names)
    hardware = ", ".join(sorted(df["hardware"].dropna().unique())) or "unknown hardware"
    lines = [f"# RepBench report: {hardware}", "", _runs_line(df), "", _status_line(df), ""]
    lines += _environment_lines(df)
    lines += _figure_lines(rendered, out_dir)
    tables = _write_tables(df, out_dir, hardware_dirs, lines)
    report = out_dir / "report.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    return ReportOutput(report, rendered, tables)


def _runs_line(df: pd.DataFrame) -> str:
    runs = sorted(df["run_id"].dropna().unique()) if "run_id" in df.columns else []
    return "Runs: " + (", ".join(f"`{r}`" for r in runs) or "none")


def _status_line(df: pd.DataFrame) -> str:
    counts = df["status"].value_counts()
    parts = ", ".join(f"{status}: {n}" for status, n in counts.items())
    return f"Cells: {len(df)} ({parts}). Speedups use only pairs whose two cells are `ok`."


def _environment_lines(df: pd.DataFrame) -> list[str]:
    """Device and software versions as recorded in the rows (first distinct values)."""
    keys = ("device", "torch_version", "cuda_version", "cudnn_version", "git_sha", "num_threads",
            "timing_regime")
    parts = []
    for key in keys:
        if key in df.columns:
            values = sorted({str(v) for v in df[key].dropna()})
            if values:
                parts.append(f"{key}: {', '.join(values)}")
    return (["Environment: " + "; ".join(parts), ""] if parts else [])


def _figure_lines(rendered: Rendered, out_dir: Path) -> list[str]:
    lines = ["## Figures", ""]
    for name, paths in rendered.paths.items():
        png = [p for p in paths if p.suffix == ".png"]
        svg = [p for p in paths if p.suffix == ".svg"]
        if png:
            lines += [f"### {name}", "", f"![{name}]({png[0].relative_to(out_dir).as_posix()})"]
            lines += [f"([svg]({svg[0].relative_to(out_dir).as_posix()}))" if svg else "", ""]
    if rendered.skipped:
        lines += ["Figures not drawn:", ""]
        lines += [f"- `{name}`: {reason}" for name, reason in rendered.skipped.items()] + [""]
    return lines


def _write_tables(df: pd.DataFrame, out_dir: Path, hardware_dirs: list[Path], lines: list[str]) -> dict:
    """Write each table as CSV (+ Markdown for Table 4) and append its section to `lines`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = {
        "paper_table4": ("The paper's Table 4, measured here (ratio = measured / paper 1080 Ti speed, only at "
                         "the paper's setting: batch 128, 224x224, fp32; other rows show their own setting)",
                         paper_table(df)),
        "speedups": ("Speedups: train / deploy latency (median of paired block ratios; older runs: ratio of medians), "
                     "pairs with both cells ok (speedup_lo / "
                     "speedup_hi: the interval named in speedup_interval, as `bench compare` prints it)",
                     speedup_table(df)),
        "runtimes": ("Runtimes side by side: each runtime's train and deploy throughput (samples/s) and "
                     "deploy/train speedup with its 95% interval, for settings measured under several runtimes",
                     runtime_table(df)),
        "int8": ("int8: each form's error against the training form's fp32 output (SQNR in dB, top-1 "
                 "agreement, max relative error) and its fp32/int8 speedup, and the deploy/train speedup in "
                 f"int8, all timed side by side with 95% intervals. {WEIGHTS_CAVEAT}", int8_table(df)),
        "flagged": ("Flagged cells (drawn hatched or marked, never mixed in)", flagged_table(df)),
        "excluded": ("Excluded cells (not drawn; status other than ok or mismatch)", excluded_table(df)),
        "repeated": ("Cells measured in several runs (every measurement; `used` = the newest, drawn above)",
                     repeated_cells(df)),
        "kernel_counts": ("Kernel / operator counts per forward (bench profile --compare-forms)",
                          kernel_count_table(kernel_count_files(hardware_dirs), df)),
    }
    written: dict[str, Path] = {}
    for name, (heading, table) in sections.items():
        if name in ("kernel_counts", "repeated", "runtimes", "int8") and table.empty:
            continue
        csv = out_dir / f"{name}.csv"
        table.to_csv(csv, index=False)
        written[name] = csv
        text = markdown_table(table)
        if name == "paper_table4":
            md = out_dir / f"{name}.md"
            md.write_text(f"# {heading}\n\n{text}", encoding="utf-8")
            written[f"{name}_md"] = md
        lines += [f"## {heading}", "", text, f"[{csv.name}]({csv.name})", ""]
    return written
