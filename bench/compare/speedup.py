"""Deploy/train speedup inside a run, and how it changed between two runs: the project's one reading of
"speedup".

speedup = train latency / deploy latency for one configuration (every axis but `form` equal), from one
run. Since runs time the two forms side by side (`bench.measure.paired`), it is the median over the
block pairs of (train block median / deploy block median), which the worker writes with its 95% interval
from the same blocks to the run's `speedups.parquet` and onto both form rows (`speedup_median`,
`speedup_ci_low`, `speedup_ci_high`); `pair_values` reads it from there. Older runs timed the forms in
separate processes minutes apart: their speedup is derived here as median(train latency) /
median(deploy latency) of the two rows and marked `paired = False`; its interval combines the two cells' own 95% median
intervals in log space (sd of log = (ln hi - ln lo) / (2 * 1.96) per cell, added in quadrature), which
no paired block saw, so slow drift lands in such ratios unseen. Every speedup carries the name of its
interval (`speedup_interval`), and the report and `bench compare` print the same numbers from here.
Only pairs whose two cells have status `ok` count (a `mismatch` deploy form computes something else).

Intervals of a change between runs: percentile bootstrap. Unpaired speedups resample both medians from
the raw samples; a paired speedup's replicates are log-normal around it with its own interval's width
(sd of log = (ln hi - ln lo) / (2 * 1.96)), since the paired blocks, not the pooled samples, carry its
uncertainty (the normal draws are the standardised unpaired replicates, so both runs stay independent).
The change c = speedup_new / speedup_base gets verdicts like a cell's, named for a speedup: SMALLER
(c < 1 / (1 + t)), LARGER (c > 1 + t), SAME, AMBIGUOUS, MISSING, NEW; its p-value is the bootstrap-normal
one of `verdicts.log_normal_p_values`, with Benjamini-Hochberg over the speedup family.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.results.schema import AXES
from bench.compare.stats import benjamini_hochberg, percentile_interval
from bench.compare.verdicts import AMBIGUOUS, MISSING, NEW, SAME, Settings, log_normal_p_values

SMALLER, LARGER = "SMALLER", "LARGER"
PAIR_AXES: tuple[str, ...] = tuple(a for a in AXES if a != "form")
Z95 = 1.959963984540054


def _num(df: pd.DataFrame, name: str) -> np.ndarray:
    if name not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[name], errors="coerce").to_numpy(float)


PAIRED_INTERVAL = "95% CI of paired block ratios"
UNPAIRED_INTERVAL = "95% CI from both cells' median CIs (unpaired)"
NO_INTERVAL = "no interval (unpaired, no median CIs)"
INTERVAL_KINDS: tuple[str, ...] = (PAIRED_INTERVAL, UNPAIRED_INTERVAL, NO_INTERVAL)
"""The names a speedup's interval may carry, as printed beside it."""


def interval_note(*kinds: pd.Series) -> str:
    """'speedup intervals: 95% CI of paired block ratios': the interval names present, for a footnote."""
    names = sorted({str(k) for series in kinds for k in series.dropna()})
    return "speedup intervals: " + "; ".join(names) if names else ""


def _log_sd(df: pd.DataFrame, low: str, high: str) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.log(_num(df, high)) - np.log(_num(df, low))) / (2 * Z95)


def pair_values(train: pd.DataFrame, deploy: pd.DataFrame) -> pd.DataFrame:
    """Speedup of aligned train/deploy rows (same index order): `speedup`, `speedup_lo`, `speedup_hi`,
    `paired`, `speedup_interval`. The paired value the run wrote where the train row carries one, else
    (older runs) the ratio of the two rows' medians with the interval of their median CIs."""
    paired = _num(train, "speedup_median")
    with np.errstate(divide="ignore", invalid="ignore"):
        unpaired = _num(train, "latency_ms_median") / _num(deploy, "latency_ms_median")
        sd = np.hypot(_log_sd(train, "latency_ms_median_ci_low", "latency_ms_median_ci_high"),
                      _log_sd(deploy, "latency_ms_median_ci_low", "latency_ms_median_ci_high"))
    is_paired = ~np.isnan(paired)
    has_sd = np.isfinite(sd)
    kind = np.where(is_paired, PAIRED_INTERVAL, np.where(has_sd, UNPAIRED_INTERVAL, NO_INTERVAL))
    return pd.DataFrame({"speedup": np.where(is_paired, paired, unpaired),
                         "speedup_lo": np.where(is_paired, _num(train, "speedup_ci_low"),
                                                unpaired * np.exp(-Z95 * sd)),
                         "speedup_hi": np.where(is_paired, _num(train, "speedup_ci_high"),
                                                unpaired * np.exp(Z95 * sd)),
                         "paired": is_paired, "speedup_interval": kind.astype(object)}, index=train.index)


def pairs(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration with an ok train cell and an ok deploy cell: PAIR_AXES, col_train, col_deploy.

    `col_*` are the positions of the two cells in `summary` (the columns of its bootstrap matrix).
    """
    ok = summary[summary["status"].eq("ok")].assign(col=np.arange(len(summary))[summary["status"].eq("ok")])
    train = ok[ok["form"].eq("train")][[*PAIR_AXES, "col"]]
    deploy = ok[ok["form"].eq("deploy")][[*PAIR_AXES, "col"]]
    return train.merge(deploy, on=list(PAIR_AXES), suffixes=("_train", "_deploy"))


def _standard_normal(replicates: np.ndarray) -> np.ndarray:
    """Standardised log replicates of the unpaired bootstrap, per column: draws that are about N(0, 1),
    deterministic (the bootstrap's seed) and independent between the two runs of a comparison."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(replicates)
        z = (logs - np.nanmean(logs, axis=0)) / np.nanstd(logs, axis=0)
    return np.where(np.isfinite(z), z, 0.0)


def speedups_of(summary: pd.DataFrame, boot: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Speedup per pair with its interval (`pair_values`), and the (n_boot, n_pairs) replicates of the
    comparison: log-normal around the speedup with its interval's width, or, where a pair has no
    interval, the ratio of the bootstrapped medians of its raw samples."""
    table = pairs(summary)
    t, d = table["col_train"].to_numpy(int), table["col_deploy"].to_numpy(int)
    with np.errstate(divide="ignore", invalid="ignore"):
        replicates = boot[:, t] / boot[:, d]
    values = pair_values(summary.iloc[t].reset_index(drop=True), summary.iloc[d].reset_index(drop=True))
    lo, hi = values["speedup_lo"].to_numpy(float), values["speedup_hi"].to_numpy(float)
    known = ~(np.isnan(lo) | np.isnan(hi))
    if known.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            sd = np.where(known, (np.log(hi) - np.log(lo)) / (2 * Z95), 0.0)
        drawn = values["speedup"].to_numpy(float) * np.exp(_standard_normal(replicates) * sd)
        replicates = np.where(known, drawn, replicates)
    for name in values.columns:
        table[name] = values[name].to_numpy()
    return table.drop(columns=["col_train", "col_deploy"]), replicates


def compare_speedups(base: tuple[pd.DataFrame, np.ndarray], new: tuple[pd.DataFrame, np.ndarray],
                     settings: Settings) -> pd.DataFrame:
    """Outer join of the two runs' speedups with change, interval, p, BH q and a verdict per pair."""
    (b, b_boot), (n, n_boot) = base, new
    b = b.assign(_ib=np.arange(len(b)))
    n = n.assign(_in=np.arange(len(n)))
    keys = list(PAIR_AXES)
    merged = b.merge(n, on=keys, how="outer", suffixes=("_base", "_new"), sort=True)
    both = merged["_ib"].notna() & merged["_in"].notna()
    ib = merged.loc[both, "_ib"].to_numpy(int)
    inn = merged.loc[both, "_in"].to_numpy(int)
    with np.errstate(divide="ignore", invalid="ignore"):
        change = (merged.loc[both, "speedup_new"] / merged.loc[both, "speedup_base"]).to_numpy(float)
        replicates = n_boot[:, inn] / b_boot[:, ib]
    lo, hi = percentile_interval(replicates, settings.level)
    p = log_normal_p_values(change, replicates, settings)
    rejected, q = benjamini_hochberg(p, settings.fdr)
    for name, values in (("change", change), ("change_lo", lo), ("change_hi", hi), ("p_value", p),
                         ("q_value", q)):
        merged[name] = np.nan
        merged.loc[both, name] = values
    merged["verdict"] = np.where(merged["_ib"].isna(), NEW, MISSING).astype(object)
    merged["note"] = np.where(merged["_ib"].isna(), "no ok train/deploy pair in the baseline",
                              "no ok train/deploy pair in the new run").astype(object)
    merged.loc[both, "verdict"] = _classify(change, lo, hi, rejected, settings)
    merged.loc[both, "note"] = np.where(np.isnan(lo), "no raw samples: no interval", "")
    return merged.drop(columns=["_ib", "_in"]).reset_index(drop=True)


def _classify(change: np.ndarray, lo: np.ndarray, hi: np.ndarray, rejected: np.ndarray,
              settings: Settings) -> np.ndarray:
    verdict = np.full(len(change), AMBIGUOUS, dtype=object)
    smaller = (hi < settings.fast_limit) & rejected & (change < 1)
    larger = (lo > settings.slow_limit) & rejected & (change > 1)
    same = (lo >= settings.fast_limit) & (hi <= settings.slow_limit)
    verdict[same] = SAME
    verdict[smaller] = SMALLER
    verdict[larger] = LARGER
    return verdict
