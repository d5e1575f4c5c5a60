"""Helpers that keep the notebooks thin: say where results come from, draw into a scratch folder, show.

IPython is imported only inside the functions that display, so the package imports without it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from bench.report.registry import Rendered, render_figures
from bench.results.layout import RESULTS_ENV_VAR as ENV_VAR, results_root
from bench.results.table_writer import markdown_table


def no_results_message(root: Path | None = None, what: str = "a run") -> str:
    """The sentence a notebook prints when there is nothing to show, with how to get results."""
    root = Path(root) if root is not None else results_root()
    return (f"No results found for {what} under {root}. Run a sweep first, e.g. `python -m bench run "
            f"--preset smoke` (or `./run_all.sh`), or point ${ENV_VAR} at a results folder.")


def draw(df: pd.DataFrame, names: list[str], out_dir: Path | None = None) -> Rendered:
    """Render the named figures into out_dir (a fresh temporary folder by default)."""
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="repbench-figures-"))
    return render_figures(df, out, names)


def show(rendered: Rendered) -> None:
    """Display every drawn PNG and print why the others were not drawn."""
    from IPython.display import Image, display

    for name, paths in rendered.paths.items():
        png = next(p for p in paths if p.suffix == ".png")
        print(name)
        display(Image(filename=str(png)))
    for name, reason in rendered.skipped.items():
        print(f"{name}: not drawn ({reason})")


def show_table(table: pd.DataFrame) -> None:
    """A dataframe as Markdown in the notebook."""
    from IPython.display import Markdown, display

    display(Markdown(markdown_table(table)))
