"""The runtime ladder: how much of re-parameterization's gain each runtime already captures on its own.

One row of panels per model: left, the training and deploy forms' throughput under each runtime measured
(median, bars p5-p90); right, the deploy/train speedup under each runtime with its 95% interval
(`bench.report.frame.speedups`, the pairs the run timed side by side). A runtime that folds conv+BN or
fuses branches itself lifts the training form's bar and shrinks the speedup: what is left is what
re-parameterization still buys under that runtime. Throughputs of different runtimes come from
different units of work (the machine's drift between them is in the comparison); each speedup does not.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bench.report import style
from bench.report.frame import error_bars, interval_label, reference_batch, speedups
from bench.report.prepare import model_order, select
from bench.report.registry import FigureSkipped, register_figure
from bench.report.runtimes import runtime_order

WIDTH = 0.38


def _ladder_rows(df: pd.DataFrame):
    sel = select(df, vary=("runtime",))
    batch = reference_batch(sel.rows)
    sel.rows = sel.rows[sel.rows["batch_size"].eq(batch)]
    sel.setting["batch_size"] = batch
    pairs = speedups(df)
    for axis, value in sel.setting.items():
        if axis in pairs.columns:
            pairs = pairs[pairs[axis].eq(value)]
    runtimes = runtime_order(set(pairs["runtime"])) if not pairs.empty else []
    if len(runtimes) < 2:
        raise FigureSkipped("fewer than two runtimes have a valid (train, deploy) pair in one setting")
    return sel, pairs, runtimes


def _throughputs(ax, rows: pd.DataFrame, runtimes: list[str]) -> None:
    x = np.arange(len(runtimes))
    for offset, form in ((-WIDTH / 2, "train"), (WIDTH / 2, "deploy")):
        group = rows[rows["form"].eq(form)].set_index("runtime").reindex(runtimes)
        present = group["throughput"].notna().to_numpy()
        ax.bar(x[present] + offset, group["throughput"][present], WIDTH, color=style.form_color(form),
               label=style.form_label(form))
        ax.errorbar(x[present] + offset, group["throughput"][present], yerr=error_bars(group[present]),
                    fmt="none", ecolor="black", capsize=2)
    ax.set_xticks(x, runtimes, rotation=30, ha="right")
    ax.set_ylabel("throughput (samples/s)")


def _speedups(ax, pairs: pd.DataFrame, runtimes: list[str]) -> None:
    group = pairs.set_index("runtime").reindex(runtimes)
    x = np.arange(len(runtimes))
    present = group["speedup"].notna().to_numpy()
    values = group["speedup"][present].to_numpy(dtype=float)
    low = values - group["speedup_lo"][present].to_numpy(dtype=float)
    high = group["speedup_hi"][present].to_numpy(dtype=float) - values
    ax.bar(x[present], values, 0.6, color=style.form_color("deploy"), alpha=0.8)
    ax.errorbar(x[present], values, yerr=np.vstack([np.nan_to_num(low), np.nan_to_num(high)]), fmt="none",
                ecolor="black", capsize=3)
    tops = np.fmax(values, group["speedup_hi"][present].to_numpy(dtype=float))
    for xi, value, top in zip(x[present], values, tops):
        ax.annotate(f"{value:.2f}x", (xi, top), textcoords="offset points", xytext=(0, 3), ha="center",
                    fontsize=7)
    ax.axhline(1.0, color="black", lw=0.8, ls="--")
    ax.set_xticks(x, runtimes, rotation=30, ha="right")
    ax.set_ylabel("speedup (train / deploy latency)")


@register_figure("runtime_ladder")
def runtime_ladder(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Per model: train and deploy throughput under each runtime, and the speedup per runtime."""
    sel, pairs, runtimes = _ladder_rows(df)
    models = [m for m in model_order(sel.rows) if m in set(pairs["model"])]
    fig, axes = plt.subplots(len(models), 2, figsize=(10.0, 3.4 * len(models) + 1.0), squeeze=False)
    for row, model in zip(axes, models):
        _throughputs(row[0], sel.rows[sel.rows["model"].eq(model)], runtimes)
        _speedups(row[1], pairs[pairs["model"].eq(model)], runtimes)
        name = model if len(model) <= 40 else "..." + model[-37:]
        row[0].set_title(f"{name}: throughput (median, bars p5-p90)", fontsize=9)
        row[1].set_title(f"{name}: deploy/train speedup, bars: {interval_label(pairs)}", fontsize=9)
    fig.suptitle(style.title("Runtime ladder: what re-parameterization still buys under each runtime",
                             sel.hardware, sel.setting))
    style.bottom_legend(fig, style.form_handles(["train", "deploy"]))
    return style.save(fig, out_dir, "runtime_ladder", note=sel.note)
