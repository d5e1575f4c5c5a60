"""Figures and tables from result dataframes. Never imports torch: it reads result files only.

    from bench.report import render_figures, write_report, paper_table
    write_report(summary_df, Path("results/<hw>/<run>/report"))
"""

from bench.report.document import ReportOutput, write_report
from bench.report.frame import drawable, excluded, speedups
from bench.report.registry import (FIGURES, FigureSkipped, Rendered, figure_names, get_figure,
                                   register_figure, render_figures)
from bench.report.runs import find_runs, latest_run, results_root
from bench.results.table_writer import markdown_table
from bench.report.tables import paper_table, speedup_table

__all__ = [
    "FIGURES", "FigureSkipped", "Rendered", "ReportOutput", "drawable", "excluded", "figure_names",
    "find_runs", "get_figure", "latest_run", "markdown_table", "paper_table", "register_figure",
    "render_figures", "results_root", "speedup_table", "speedups", "write_report",
]
