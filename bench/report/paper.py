"""The RepVGG paper's published figures per model, as report columns.

Source of truth is `bench.models.paper.PAPER` (pure data, importable without torch): model name ->
PaperFigures with `top1`, `speed_1080ti_b128`, `params_m`, `gflops` (the paper's "FLOPs" are
multiply-accumulates). A summary that already carries `paper_*` columns takes precedence.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.models.paper import PAPER

PAPER_COLUMNS: dict[str, str] = {
    "paper_top1": "top1",
    "paper_speed_1080ti_b128": "speed_1080ti_b128",
    "paper_params_m": "params_m",
    "paper_gmacs": "gflops",
}
"""Column in the report -> attribute of PaperFigures."""


def paper_figures(df: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per model: `model` plus the PAPER_COLUMNS (NaN where the paper gives nothing).

    Uses the `paper_*` columns of `df` when the sweep recorded them, else bench/models/paper.py.
    """
    if df is not None and "paper_top1" in df.columns:
        cols = ["model", *(c for c in PAPER_COLUMNS if c in df.columns)]
        return df[cols].dropna(subset=["paper_top1"]).drop_duplicates("model").reset_index(drop=True)
    rows = [
        {"model": name, **{col: _number(getattr(fig, attr, None)) for col, attr in PAPER_COLUMNS.items()}}
        for name, fig in PAPER.items() if fig is not None
    ]
    return pd.DataFrame(rows, columns=["model", *PAPER_COLUMNS])


def with_paper(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with the paper columns joined on `model` (rows of models the paper lacks get NaN)."""
    paper = paper_figures(df)
    base = df.drop(columns=[c for c in PAPER_COLUMNS if c in df.columns])
    return base.merge(paper, on="model", how="left")


def _number(value: Any) -> float:
    return float(value) if value is not None else float("nan")
