"""Tables: the paper's Table 4 reproduced, speedups, flagged and excluded cells, kernel counts.

Each table is a DataFrame first (testable, CSV) and Markdown second (`markdown_table`).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bench.report.frame import drawable, excluded, fix_axes, speedups
from bench.report.paper import paper_figures

TABLE4_COLUMNS: tuple[str, ...] = (
    "hardware", "model", "form", "batch_size", "precision", "params_m_paper", "params_m", "gmacs_paper",
    "gmacs", "speed_1080ti_paper_samples_s", "speed_samples_s", "speed_lo_samples_s", "speed_hi_samples_s",
    "ratio_measured_to_paper", "flag",
)


def markdown_table(df: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table; floats to `digits` significant figures, NaN as blank."""
    if df.empty:
        return "_(none)_\n"
    header = "| " + " | ".join(str(c) for c in df.columns) + " |"
    rule = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = ["| " + " | ".join(_cell(v, digits) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def _cell(value: object, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:.0f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def paper_table(df: pd.DataFrame) -> pd.DataFrame:
    """Table 4 of the RepVGG paper beside this hardware's measurement.

    Setting as in the paper: inference, batch 128 (else the largest batch measured), fp32, the deploy
    form where one exists (the paper times converted models). ratio = measured / paper speed (1080 Ti).
    speed_lo / speed_hi: throughput at the latency's p90 / p5.
    Rows of the paper's models that were not measured are omitted; measured models the paper lacks keep
    blank paper columns.
    """
    rows, setting = fix_axes(drawable(df))
    if rows.empty:
        return pd.DataFrame(columns=TABLE4_COLUMNS)
    rows = _paper_batch(rows)
    rank = rows["form"].map({"deploy": 0, "train": 1}).fillna(2)
    rows = rows.assign(_rank=rank).sort_values("_rank").drop_duplicates(["hardware", "model"])
    paper = paper_figures(df).rename(columns={
        "paper_params_m": "params_m_paper", "paper_gmacs": "gmacs_paper",
        "paper_speed_1080ti_b128": "speed_1080ti_paper_samples_s",
    })
    table = rows.merge(paper, on="model", how="left").rename(columns={
        "throughput": "speed_samples_s", "throughput_lo": "speed_lo_samples_s",
        "throughput_hi": "speed_hi_samples_s",
    })
    table["ratio_measured_to_paper"] = table["speed_samples_s"] / table["speed_1080ti_paper_samples_s"]
    for column in TABLE4_COLUMNS:
        if column not in table.columns:
            table[column] = float("nan")
    order = table["params_m"].fillna(float("inf"))
    return table.assign(_o=order).sort_values(["hardware", "_o", "model"])[list(TABLE4_COLUMNS)].reset_index(
        drop=True)


def _paper_batch(rows: pd.DataFrame, preferred: int = 128) -> pd.DataFrame:
    """Per hardware, the rows at batch 128 when measured there, else at that hardware's largest batch."""
    parts = []
    for _, group in rows.groupby("hardware"):
        batch = preferred if preferred in set(group["batch_size"]) else group["batch_size"].max()
        parts.append(group[group["batch_size"].eq(batch)])
    return pd.concat(parts) if parts else rows


def speedup_table(df: pd.DataFrame) -> pd.DataFrame:
    """Every valid (both cells ok) deploy/train pair with its bounds, sorted for reading."""
    pairs = speedups(df)
    cols = [c for c in ("hardware", "model", "mode", "batch_size", "precision", "memory_format", "runtime",
                        "resolution", "throughput_train", "throughput_deploy", "speedup", "speedup_lo",
                        "speedup_hi", "flag") if c in pairs.columns]
    return pairs[cols].sort_values(cols[:8]).reset_index(drop=True)


def flagged_table(df: pd.DataFrame) -> pd.DataFrame:
    """Cells drawn with a mark: throttled during timing, or deploy output mismatched the training form."""
    rows = drawable(df)
    rows = rows[rows["flag"].ne("")]
    cols = [c for c in ("hardware", "model", "form", "mode", "batch_size", "precision", "memory_format",
                        "runtime", "flag", "latency_cv", "pct_of_peak", "throttle_reasons", "max_abs_err", "max_rel_err", "tolerance")
            if c in rows.columns]
    return rows[cols].reset_index(drop=True)


def excluded_table(df: pd.DataFrame, max_error_chars: int = 120) -> pd.DataFrame:
    """Cells left out of every figure and why (status and the first line of the error)."""
    rows = excluded(df)
    if "error" in rows.columns:
        rows["error"] = rows["error"].map(
            lambda e: "" if e is None or e != e else str(e).strip().splitlines()[0][:max_error_chars])
    return rows


def kernel_count_files(hardware_dirs: list[Path]) -> list[Path]:
    """`kernel_counts.csv` files written by `bench profile --compare-forms` under <hardware>/traces/."""
    files: list[Path] = []
    for directory in hardware_dirs:
        files.extend(sorted((directory / "traces").glob("*/kernel_counts.csv")))
    return files


def kernel_count_table(files: list[Path]) -> pd.DataFrame:
    """All kernel-count comparisons found, one table (empty when no profile was taken)."""
    frames = [pd.read_csv(f) for f in files]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
