"""Runtimes side by side: for every setting measured under several runtimes (eager and onnxruntime, say),
each runtime's training and deploy throughput and its deploy/train speedup in one row.

The speedups are `bench.report.frame.speedups`, i.e. `bench.compare.speedup.pair_values`: the paired
value and 95% interval the run wrote to `speedups.parquet` (and onto both form rows). Throughputs of
different runtimes were timed in different units of work, so comparing them across runtimes carries the
machine's drift between those units; the speedups within a runtime do not.
"""

from __future__ import annotations

import pandas as pd

from bench.report.frame import speedups

SETTING: tuple[str, ...] = ("hardware", "model", "mode", "batch_size", "precision", "memory_format",
                            "resolution")
VALUES: tuple[str, ...] = ("throughput_train", "throughput_deploy", "speedup", "speedup_lo", "speedup_hi")
FIRST_RUNTIME = "eager"
"""The reference runtime, shown first; the others follow in name order."""


def runtime_order(runtimes: set[str]) -> list[str]:
    return sorted(runtimes, key=lambda r: (r != FIRST_RUNTIME, r))


def runtime_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per setting measured (both forms ok) under at least two runtimes; columns
    `<runtime>_<value>` for each runtime and each of VALUES (throughputs in samples/s). Empty when no
    setting has two runtimes."""
    pairs = speedups(df)
    keys = [k for k in SETTING if k in pairs.columns]
    if pairs.empty or "runtime" not in pairs.columns:
        return pd.DataFrame(columns=keys)
    counts = pairs.groupby(keys, dropna=False)["runtime"].transform("nunique")
    pairs = pairs[counts.ge(2)]
    if pairs.empty:
        return pd.DataFrame(columns=keys)
    wide = pairs.pivot_table(index=keys, columns="runtime", values=list(VALUES), aggfunc="first")
    order = runtime_order(set(pairs["runtime"]))
    columns = [(value, runtime) for runtime in order for value in VALUES if (value, runtime) in wide.columns]
    wide = wide[columns]
    wide.columns = [f"{runtime}_{value}" for value, runtime in columns]
    return wide.reset_index()
