"""Summary dataframes shaped for drawing: which rows may be drawn, their spread, and speedup pairs.

Every figure and table goes through these functions so that the rules are written once:
- rows with status `ok` or `mismatch` carry valid timings and are drawn; `mismatch`, throttled, noisy
  and over-peak rows are drawn distinctly (`flag` column), never silently mixed in;
- rows with any other status (oom, error, timeout, skipped) are excluded and listed with their reason;
- a speedup exists only for a (train, deploy) pair whose rows both have status `ok`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from bench.results.derived import throughput
from bench.results.noise import noisy_mask
from bench.results.schema import AXES

DRAWN_STATUSES: tuple[str, ...] = ("ok", "mismatch")
"""Statuses whose timings are valid measurements (a mismatch is timed, but wrong, so never a speedup)."""

BASELINE: dict[str, str] = {
    "mode": "infer", "precision": "fp32", "memory_format": "contiguous", "runtime": "eager",
}
"""Preferred value of each axis a figure holds fixed; the most common value is used when it is absent."""

FLAG_THROTTLED = "throttled"
FLAG_MISMATCH = "mismatch"
FLAG_NOISY = "noisy"
FLAG_OVER_PEAK = "over-peak"
"""Achieved FLOP/s above the device's dense peak for the precision: impossible, so the timing (or the
MAC count) of that cell is wrong and it must be investigated, not published."""
PAIR_KEYS: tuple[str, ...] = ("hardware", *(a for a in AXES if a != "form"))


def throttled_mask(df: pd.DataFrame) -> pd.Series:
    """True where NVML reported a clock-reducing throttle reason during the cell (None = not known)."""
    if "throttled" not in df.columns:
        return pd.Series(False, index=df.index)
    return df["throttled"].map(lambda v: bool(v) if v is not None and v == v else False).astype(bool)


def over_peak_mask(df: pd.DataFrame) -> pd.Series:
    """True where pct_of_peak exceeds 100."""
    if "pct_of_peak" not in df.columns:
        return pd.Series(False, index=df.index)
    return pd.to_numeric(df["pct_of_peak"], errors="coerce").gt(100.0)


FLAG_ORDER: tuple[str, ...] = (FLAG_MISMATCH, FLAG_THROTTLED, FLAG_NOISY, FLAG_OVER_PEAK)


def flag_of(df: pd.DataFrame) -> pd.Series:
    """'+'-joined flags per row, in FLAG_ORDER; '' for a clean row."""
    masks = {FLAG_MISMATCH: df["status"].eq("mismatch"), FLAG_THROTTLED: throttled_mask(df),
             FLAG_NOISY: noisy_mask(df), FLAG_OVER_PEAK: over_peak_mask(df)}
    columns = [mask.to_numpy(dtype=bool) for mask in masks.values()]
    flags = ["+".join(name for name, hit in zip(masks, hits) if hit) for hits in zip(*columns)]
    return pd.Series(flags, index=df.index, dtype=object)


def _merge_flags(a: str, b: str) -> str:
    names = [n for n in FLAG_ORDER if n in f"{a}+{b}".split("+")]
    return "+".join(names)


def latest_per_cell(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (hardware, cell): the newest (by `started_at`) wins when several runs measured it."""
    keys = [c for c in ("hardware", *AXES) if c in df.columns]
    ordered = (df.sort_values("started_at", kind="stable", na_position="first")
               if "started_at" in df.columns else df)
    return ordered.drop_duplicates(subset=keys, keep="last").sort_index()


def drawable(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with valid timings, plus `throughput`, its p5-p90 bounds and the `flag` column.

    Throughput: `bench.results.derived.throughput` of the median latency. Its spread is the latency's
    p5..p90 through the same formula: lower from p90, upper from p5 (the slow tail bounds throughput
    from below). Missing percentiles fall back to median -/+ IQR/2.
    """
    out = latest_per_cell(df[df["status"].isin(DRAWN_STATUSES)]).copy()
    if out.empty:
        return out.assign(throughput=[], throughput_lo=[], throughput_hi=[], flag=[])
    batch = out["batch_size"].astype(float)
    median = _col(out, "latency_ms_median")
    p90 = _col(out, "latency_ms_p90").fillna(median + _col(out, "latency_ms_iqr") / 2)
    p5 = _col(out, "latency_ms_p5").fillna(median - _col(out, "latency_ms_iqr") / 2)
    out["throughput"] = _col(out, "throughput_samples_s").fillna(throughput(batch, median))
    out["throughput_lo"] = throughput(batch, p90).fillna(out["throughput"])
    out["throughput_hi"] = throughput(batch, p5).fillna(out["throughput"])
    out["throughput_lo"] = np.minimum(out["throughput_lo"], out["throughput"])
    out["throughput_hi"] = np.maximum(out["throughput_hi"], out["throughput"])
    out["flag"] = flag_of(out)
    return out[out["throughput"].notna()]


def excluded(df: pd.DataFrame) -> pd.DataFrame:
    """Rows not drawn (status not ok/mismatch), newest per cell, with the reason to list in the report."""
    rows = latest_per_cell(df[~df["status"].isin(DRAWN_STATUSES)])
    cols = [c for c in ("hardware", *AXES, "status", "error", "skip_reason") if c in rows.columns]
    return rows[cols].reset_index(drop=True)


def excluded_note(df: pd.DataFrame) -> str:
    """A one-line footnote such as 'excluded 3 cells (oom: 2, error: 1); see report.md'."""
    rows = excluded(df)
    if rows.empty:
        return ""
    counts = rows["status"].value_counts()
    parts = ", ".join(f"{status}: {n}" for status, n in counts.items())
    return f"excluded {len(rows)} cell(s) ({parts}); listed in report.md"


def error_bars(df: pd.DataFrame, value: str = "throughput") -> np.ndarray:
    """matplotlib `yerr`/`xerr` array (2, n): distances from the value to its lower and upper bound."""
    lower = (df[value] - df[f"{value}_lo"]).clip(lower=0).to_numpy(dtype=float)
    upper = (df[f"{value}_hi"] - df[value]).clip(lower=0).to_numpy(dtype=float)
    return np.vstack([lower, upper])


def speedups(df: pd.DataFrame) -> pd.DataFrame:
    """Deploy/train speedup for every pair whose two cells have status `ok`.

    speedup = train latency / deploy latency (paired runs: the median of the block ratios; older runs: the
    ratio of the two rows' medians), with its interval and the interval's name
    (`speedup_interval`), read through `bench.compare.speedup.pair_values`, the project's one
    definition, so `bench compare` prints the same numbers. `flag` joins the flags of both cells
    (throttled, noisy, over-peak). Mismatched deploy cells never enter (their output is wrong).
    """
    from bench.compare.speedup import pair_values

    rows = drawable(df)
    rows = rows[rows["status"].eq("ok")]
    keys = [k for k in PAIR_KEYS if k in rows.columns]
    measured = [c for c in ("latency_ms_median", "latency_ms_median_ci_low", "latency_ms_median_ci_high",
                            "speedup_median", "speedup_ci_low", "speedup_ci_high") if c in rows.columns]
    cols = [*keys, "throughput", "throughput_lo", "throughput_hi", "flag", *measured]
    train = rows[rows["form"].eq("train")][cols]
    deploy = rows[rows["form"].eq("deploy")][cols]
    pairs = train.merge(deploy, on=keys, suffixes=("_train", "_deploy")).reset_index(drop=True)
    values = pair_values(pairs[[f"{c}_train" for c in measured]].rename(columns=lambda c: c[:-6]),
                         pairs[[f"{c}_deploy" for c in measured]].rename(columns=lambda c: c[:-7]))
    for name in values.columns:
        pairs[name] = values[name]
    pairs["flag"] = [_merge_flags(a, b) for a, b in zip(pairs["flag_train"], pairs["flag_deploy"])]
    drop = ["flag_train", "flag_deploy", *(f"{c}_{f}" for c in measured for f in ("train", "deploy"))]
    return pairs.drop(columns=drop)


def interval_label(pairs: pd.DataFrame) -> str:
    """The names of the speedup intervals in `pairs` ('95% CI of paired block ratios'), for titles."""
    kinds = sorted({str(k) for k in pairs.get("speedup_interval", pd.Series(dtype=object)).dropna()})
    return "; ".join(kinds) if kinds else "no interval"


def choose(values: Iterable, preferred: object) -> object:
    """`preferred` when present, else the most common value (ties: first in sorted order)."""
    series = pd.Series(list(values))
    if series.empty:
        return preferred
    if preferred in set(series):
        return preferred
    counts = series.value_counts()
    return sorted(counts[counts == counts.max()].index, key=str)[0]


def fix_axes(df: pd.DataFrame, vary: Iterable[str] = ()) -> tuple[pd.DataFrame, dict[str, object]]:
    """Hold every axis in BASELINE that a figure does not vary at one value; returns rows and choices."""
    vary = set(vary)
    chosen: dict[str, object] = {}
    for axis, preferred in BASELINE.items():
        if axis in vary or axis not in df.columns:
            continue
        chosen[axis] = choose(df[axis], preferred)
        df = df[df[axis] == chosen[axis]]
    return df, chosen


def reference_batch(df: pd.DataFrame, preferred: int = 128) -> int | None:
    """The paper's batch (128) when measured, else the largest batch measured for the most models."""
    if df.empty:
        return None
    batches = df.groupby("batch_size")["model"].nunique()
    if preferred in batches.index:
        return preferred
    best = batches[batches == batches.max()].index
    return int(max(best))


def hardware_label(df: pd.DataFrame) -> str:
    """Hardware slug(s) of the rows, for titles."""
    names = sorted({str(h) for h in df.get("hardware", pd.Series(dtype=object)).dropna()})
    return " vs ".join(names) if names else "unknown hardware"


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    if name not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype=float)
    return pd.to_numeric(df[name], errors="coerce").astype(float)
