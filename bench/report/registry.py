"""Registry of figures: name -> function(summary_df, out_dir) -> list of written paths.

Adding a figure is one function plus `@register_figure("name")`. A figure that does not apply to the data
(one hardware only, no peak FLOP/s known on a CPU, ...) raises `FigureSkipped` with the reason, which the
report lists instead of drawing an empty plot.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.usage import unknown

FigureFn = Callable[[pd.DataFrame, Path], list[Path]]
FIGURES: dict[str, FigureFn] = {}


class FigureSkipped(Exception):
    """The figure does not apply to these rows; the message says why."""


def register_figure(name: str) -> Callable[[FigureFn], FigureFn]:
    """Register `fn` under `name`; it runs inside the report's matplotlib style (bench.report.style.RC)."""
    def decorator(fn: FigureFn) -> FigureFn:
        if name in FIGURES:
            raise ValueError(f"figure '{name}' is already registered")

        @functools.wraps(fn)
        def styled(df: pd.DataFrame, out_dir: Path) -> list[Path]:
            from bench.report.style import RC, plt

            with plt.rc_context(RC):
                return fn(df, Path(out_dir))

        FIGURES[name] = styled
        return styled
    return decorator


def figure_names() -> list[str]:
    _load_builtin()
    return list(FIGURES)


def get_figure(name: str) -> FigureFn:
    _load_builtin()
    if name not in FIGURES:
        raise KeyError(str(unknown("figure", name, FIGURES)))
    return FIGURES[name]


@dataclass
class Rendered:
    """What `render_figures` did: paths per figure and the reason for each skipped one."""

    paths: dict[str, list[Path]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def render_figures(df: pd.DataFrame, out_dir: Path, names: Iterable[str] | None = None) -> Rendered:
    """Draw the named figures (all by default) from one summary dataframe into out_dir."""
    rendered = Rendered()
    for name in (list(names) if names is not None else figure_names()):
        try:
            rendered.paths[name] = get_figure(name)(df, Path(out_dir))
        except FigureSkipped as skip:
            rendered.skipped[name] = str(skip)
    return rendered


def _load_builtin() -> None:
    """Import the modules whose decorators fill FIGURES (kept lazy so registry has no import cycle)."""
    from bench.report import figures_compare, figures_runtimes, figures_speed, int8  # noqa: F401
