"""Deploy/train speedup inside a run, and how it changed between two runs.

speedup = median(train latency) / median(deploy latency) for one configuration (every axis but `form`
equal), from one run: both forms ran minutes apart on the same machine, so the ratio carries less machine
drift than either latency and transfers across machines better than absolute times.
Only pairs whose two cells have status `ok` count (a `mismatch` deploy form computes something else).

Intervals: percentile bootstrap with both medians resampled (a change between runs resamples all four).
The change c = speedup_new / speedup_base gets verdicts like a cell's, named for a speedup: SMALLER
(c < 1 / (1 + t)), LARGER (c > 1 + t), SAME, AMBIGUOUS, MISSING, NEW; its p-value is the bootstrap-normal
one of `verdicts.log_normal_p_values`, with Benjamini-Hochberg over the speedup family.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.results.schema import AXES
from bench.results.stats import benjamini_hochberg, percentile_interval
from bench.results.verdicts import AMBIGUOUS, MISSING, NEW, SAME, Settings, log_normal_p_values

SMALLER, LARGER = "SMALLER", "LARGER"
PAIR_AXES: tuple[str, ...] = tuple(a for a in AXES if a != "form")


def pairs(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration with an ok train cell and an ok deploy cell: PAIR_AXES, col_train, col_deploy.

    `col_*` are the positions of the two cells in `summary` (the columns of its bootstrap matrix).
    """
    ok = summary[summary["status"].eq("ok")].assign(col=np.arange(len(summary))[summary["status"].eq("ok")])
    train = ok[ok["form"].eq("train")][[*PAIR_AXES, "col"]]
    deploy = ok[ok["form"].eq("deploy")][[*PAIR_AXES, "col"]]
    return train.merge(deploy, on=list(PAIR_AXES), suffixes=("_train", "_deploy"))


def speedups_of(summary: pd.DataFrame, medians: np.ndarray, boot: np.ndarray,
                settings: Settings) -> tuple[pd.DataFrame, np.ndarray]:
    """Speedup per pair with its interval, and the (n_boot, n_pairs) bootstrap replicates."""
    table = pairs(summary)
    t, d = table["col_train"].to_numpy(int), table["col_deploy"].to_numpy(int)
    with np.errstate(divide="ignore", invalid="ignore"):
        table["speedup"] = medians[t] / medians[d]
        replicates = boot[:, t] / boot[:, d]
    table["speedup_lo"], table["speedup_hi"] = percentile_interval(replicates, settings.level)
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
