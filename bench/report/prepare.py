"""The selection every figure starts from: one hardware, drawable rows, fixed axes, the excluded note."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bench.report.frame import drawable, excluded_note, fix_axes, hardware_label
from bench.report.registry import FigureSkipped


@dataclass
class Selection:
    """Rows to draw and how they were chosen (for the title and the footnote)."""

    rows: pd.DataFrame
    setting: dict[str, object]
    hardware: str
    note: str


def one_hardware(df: pd.DataFrame) -> str:
    """The one hardware slug of df; per-hardware figures refuse mixed hardware (see hardware_comparison)."""
    names = sorted({str(h) for h in df["hardware"].dropna()}) if "hardware" in df.columns else []
    if len(names) > 1:
        raise FigureSkipped(f"rows from several hardware ({', '.join(names)}); drawn per hardware "
                            "and side by side in hardware_comparison")
    return names[0] if names else "unknown hardware"


def one_resolution_per_model(df: pd.DataFrame) -> pd.DataFrame:
    """Keep each model's most common resolution so a (model, form, batch) point is unique."""
    if df.empty or "resolution" not in df.columns:
        return df
    common = df.groupby("model")["resolution"].agg(lambda s: s.value_counts().index[0])
    return df[df["resolution"].eq(df["model"].map(common))]


def select(df: pd.DataFrame, vary: tuple[str, ...] = (), need: str | None = None) -> Selection:
    """Drawable rows of one hardware with the non-varied axes fixed; `need`: a column that must have data."""
    hardware = one_hardware(df)
    rows = drawable(df)
    if need is not None:
        if need not in rows.columns or rows[need].isna().all():
            raise FigureSkipped(f"column '{need}' has no values in these rows")
        rows = rows[rows[need].notna()]
    rows, setting = fix_axes(rows, vary)
    rows = one_resolution_per_model(rows)
    if rows.empty:
        raise FigureSkipped("no cell with status ok or mismatch to draw")
    return Selection(rows, setting, hardware or hardware_label(rows), excluded_note(df))


def model_order(rows: pd.DataFrame) -> list[str]:
    """Models sorted by parameter count of their training form (small to large), then by name."""
    params = (rows.groupby("model")["params_m"].max().fillna(float("inf"))
              if "params_m" in rows.columns else pd.Series(dtype=float))
    models = sorted(rows["model"].unique(), key=lambda m: (params.get(m, float("inf")), str(m)))
    return [str(m) for m in models]
