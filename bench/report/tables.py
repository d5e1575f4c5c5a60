"""Tables: the paper's Table 4 reproduced, speedups, flagged and excluded cells, kernel counts.

Each table is a DataFrame first (testable, CSV) and Markdown second (`markdown_table`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.results.layout import TRACES_DIR
from bench.report.frame import drawable, excluded, fix_axes, speedups
from bench.report.paper import paper_figures

TABLE4_COLUMNS: tuple[str, ...] = (
    "hardware", "model", "form", "batch_size", "resolution", "precision", "params_m_paper", "params_m",
    "gmacs_paper", "gmacs", "speed_1080ti_paper_samples_s", "speed_samples_s", "speed_lo_samples_s",
    "speed_hi_samples_s", "ratio_measured_to_paper", "flag",
)
PAPER_SETTING: dict[str, object] = {"batch_size": 128, "resolution": 224, "precision": "fp32"}
"""The paper's Table 4 setting (1080 Ti, batch 128, 224x224, fp32): a ratio to its speed is computed only
for a measurement taken at the same setting; others keep their speed, with the setting beside it."""


def paper_table(df: pd.DataFrame) -> pd.DataFrame:
    """Table 4 of the RepVGG paper beside this hardware's measurement.

    Setting as in the paper: inference, batch 128 (else the largest batch measured), fp32, the deploy
    form where one exists (the paper times converted models). ratio = measured / paper speed (1080 Ti),
    only where batch, resolution and precision match the paper's (PAPER_SETTING); the `batch_size` and
    `resolution` columns show every row's setting.
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
    like = pd.Series(True, index=table.index)
    for key, value in PAPER_SETTING.items():
        like &= table[key].eq(value)
    table["ratio_measured_to_paper"] = (table["speed_samples_s"] / table["speed_1080ti_paper_samples_s"]).where(like)
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
                        "speedup_hi", "speedup_interval", "flag") if c in pairs.columns]
    return pairs[cols].sort_values(cols[:8]).reset_index(drop=True)


def flagged_table(df: pd.DataFrame) -> pd.DataFrame:
    """Cells drawn with a mark (throttled, mismatch, noisy, over-peak), with the machine's load as each
    ended (load_avg_1m, cpu_pressure_avg10), so interference can be read beside a noisy cell."""
    rows = drawable(df)
    rows = rows[rows["flag"].ne("")]
    cols = [c for c in ("hardware", "run_id", "model", "form", "mode", "batch_size", "resolution", "precision",
                        "memory_format", "runtime", "flag", "noisy", "latency_cv", "load_avg_1m", "cpu_pressure_avg10",
                        "pct_of_peak", "throttle_reasons", "max_abs_err", "max_rel_err", "tolerance")
            if c in rows.columns]
    return rows[cols].reset_index(drop=True)


def excluded_table(df: pd.DataFrame, max_error_chars: int = 120) -> pd.DataFrame:
    """Cells left out of every figure and why (status and the first line of the error)."""
    rows = excluded(df)
    if "error" in rows.columns:
        rows["error"] = rows["error"].map(
            lambda e: "" if e is None or e != e else str(e).strip().splitlines()[0][:max_error_chars])
    return rows


def repeated_cells(df: pd.DataFrame) -> pd.DataFrame:
    """Cells measured by more than one run: every run's measurement, and which one the report uses (the
    newest, `frame.latest_per_cell`), so no run's number is dropped without a word."""
    from bench.report.frame import DRAWN_STATUSES, latest_per_cell
    from bench.results.schema import AXES

    cols = [c for c in ("hardware", *AXES, "run_id", "started_at", "status", "latency_ms_median", "latency_cv")
            if c in df.columns]
    timed = df[df["status"].isin(DRAWN_STATUSES)]
    keys = [c for c in ("hardware", *AXES) if c in df.columns]
    if timed.empty or "run_id" not in timed.columns:
        return pd.DataFrame(columns=[*cols, "used"])
    runs = timed.groupby(keys, dropna=False)["run_id"].transform("nunique")
    repeated = timed[runs.gt(1)]
    used = latest_per_cell(timed).index
    return (repeated[cols].assign(used=repeated.index.isin(used)).sort_values([*keys, "started_at"])
            .reset_index(drop=True))


def kernel_count_files(hardware_dirs: list[Path]) -> list[Path]:
    """`kernel_counts.csv` files written by `bench profile --compare-forms` under <hardware>/traces/."""
    files: list[Path] = []
    for directory in hardware_dirs:
        files.extend(sorted((directory / TRACES_DIR).glob("*/kernel_counts.csv")))
    return files


def kernel_count_table(files: list[Path], df: pd.DataFrame | None = None) -> pd.DataFrame:
    """The kernel-count comparisons found (empty when no profile was taken); with `df`, only profiles of
    the report's own cells (same model, batch, precision and resolution), not every trace of the hardware."""
    frames = [pd.read_csv(f) for f in files]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    keys = [k for k in ("model", "batch_size", "precision", "resolution") if k in table.columns]
    if df is None or table.empty or not keys or any(k not in df.columns for k in keys):
        return table
    own = df[keys].drop_duplicates()
    return table.merge(own, on=keys, how="inner")[list(table.columns)]
