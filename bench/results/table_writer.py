"""The one table writer: rows of strings as aligned text or GitHub Markdown, and a DataFrame as Markdown,
for `bench compare`, the report, notebooks and `bench profile`."""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd


def table(headers: list[str], rows: list[list[str]], markdown: bool) -> str:
    """Markdown (pipes in cells escaped) or space-aligned text with a dashed rule under the header."""
    if markdown:
        esc: Callable[[str], str] = lambda s: s.replace("|", "\\|")
        lines = ["| " + " | ".join(map(esc, headers)) + " |", "| " + " | ".join(["---"] * len(headers)) + " |"]
        return "\n".join([*lines, *("| " + " | ".join(map(esc, r)) + " |" for r in rows)])
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([fmt(headers), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)])


def markdown_table(df: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as a Markdown table; floats to `digits` significant figures, NaN as blank."""
    if df.empty:
        return "_(none)_\n"
    rows = [[_cell(v, digits) for v in row] for row in df.itertuples(index=False)]
    return table([str(c) for c in df.columns], rows, markdown=True) + "\n"


def _cell(value: object, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:.0f}"
    return str(value).replace("\n", " ")
