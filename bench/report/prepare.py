"""The selection every figure starts from: one hardware, drawable rows, fixed axes, the excluded note."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bench.report.frame import drawable, excluded_note, fix_axes, hardware_label
from bench.report.registry import FigureSkipped


TITLE_ONLY_RESOLUTION = "input_size"
"""Setting key (not a column, so filters keyed on the setting ignore it) holding the selection's input
resolution for titles: '224x224', or the resolution of each model when they differ."""


TITLE_ONLY_RUNS = "runs_drawn"
"""Setting key (not a column) naming the runs drawn when there are several."""


def runs_label(rows: pd.DataFrame) -> str:
    """'' for one run; 'runs a, b (newest run per cell)' for several (report.md lists repeated cells)."""
    runs = sorted({str(r) for r in rows["run_id"].dropna()}) if "run_id" in rows.columns else []
    if len(runs) < 2:
        return ""
    shown = ", ".join(runs[:3]) + (f", +{len(runs) - 3} more" if len(runs) > 3 else "")
    return f"runs {shown} (newest run per cell)"


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


def resolution_label(rows: pd.DataFrame) -> str:
    """'224x224', or 'resolution per model: blog_repvgg 64x64, repvgg_a0 224x224' when models differ."""
    if "resolution" not in rows.columns or rows.empty:
        return ""
    per_model = rows.groupby("model")["resolution"].first()
    values = sorted(set(int(v) for v in per_model))
    if len(values) == 1:
        return f"{values[0]}x{values[0]}"
    if len(per_model) > 3:
        return "resolutions " + ", ".join(f"{v}x{v}" for v in values) + " (per model)"
    return "resolution per model: " + ", ".join(f"{m} {int(r)}x{int(r)}" for m, r in per_model.items())


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
    setting = {**setting, TITLE_ONLY_RESOLUTION: resolution_label(rows), TITLE_ONLY_RUNS: runs_label(rows)}
    return Selection(rows, setting, hardware or hardware_label(rows), excluded_note(df))


def model_order(rows: pd.DataFrame) -> list[str]:
    """Models sorted by parameter count of their training form (small to large), then by name."""
    params = (rows.groupby("model")["params_m"].max().fillna(float("inf"))
              if "params_m" in rows.columns else pd.Series(dtype=float))
    models = sorted(rows["model"].unique(), key=lambda m: (params.get(m, float("inf")), str(m)))
    return [str(m) for m in models]
