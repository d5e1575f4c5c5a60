"""Figures that compare settings: memory per form, precision and memory format, percent of peak, hardware.

Memory is the paper's memory figure: on CUDA `peak_allocated_mib` (torch.cuda.max_memory_allocated: live
tensors only, no CUDA context or allocator cache); on a CPU `peak_rss_mib` (the process's peak resident
set, interpreter and libraries included). The label on the axis says which definition is drawn.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bench.report import style
from bench.report.frame import drawable, error_bars, excluded_note, fix_axes, interval_label, speedups
from bench.report.panels import forms_by_batch
from bench.report.prepare import model_order, one_resolution_per_model, select
from bench.report.registry import FigureSkipped, register_figure

RSS_CAVEAT = ("peak_rss_mib is the peak resident set of the cell's memory pass (its peak mark is reset "
              "before the pass, so a deploy cell does not carry the training form it was converted from). It "
              "includes the Python interpreter and torch itself (about 220 MiB for `import torch` alone, "
              "measured on the CPU build): compare forms, not absolute values. Each panel has its own y-axis "
              "because models differ by up to an order of magnitude; read differences within a panel.")
MEMORY_DEFINITIONS: dict[str, str] = {
    "peak_allocated_mib": "peak allocated by tensors (MiB)\ntorch.cuda.max_memory_allocated",
    "peak_rss_mib": "peak resident set size (MiB)\nwhole process, incl. interpreter",
}


def memory_column(df: pd.DataFrame) -> str:
    """`peak_allocated_mib` where measured (CUDA), else `peak_rss_mib` (CPU)."""
    for column in MEMORY_DEFINITIONS:
        if column in df.columns and df[column].notna().any():
            return column
    raise FigureSkipped("no memory column (peak_allocated_mib, peak_rss_mib) has values")


@register_figure("memory_forms")
def memory_forms(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Peak memory of training vs deploy form per batch size, one panel per model."""
    column = memory_column(drawable(df))
    sel = select(df, need=column)
    fig = forms_by_batch(sel, column, MEMORY_DEFINITIONS[column],
                         f"Peak memory, training vs deploy form ({column})")
    note = " ".join(n for n in (RSS_CAVEAT if column == "peak_rss_mib" else "", sel.note) if n)
    return style.save(fig, out_dir, "memory_forms", note=note)


@register_figure("precision_format")
def precision_format(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Throughput per precision x memory format at the reference batch, one panel per form."""
    sel = select(df, vary=("precision", "memory_format"))
    rows = sel.rows
    batch = _common_batch(rows, "precision")
    rows = rows[rows["batch_size"].eq(batch)]
    combos = sorted({(p, m) for p, m in zip(rows["precision"], rows["memory_format"])})
    if len(combos) < 2:
        raise FigureSkipped("only one precision and memory format measured")
    models = model_order(rows)
    forms = [f for f in ("train", "deploy") if f in set(rows["form"])]
    fig, axes = plt.subplots(1, len(forms), figsize=(max(6.0, 1.1 * len(models) + 2) * len(forms), 4.8),
                             squeeze=False)
    colors = plt.get_cmap("tab10")
    width = 0.8 / len(combos)
    seen: set[str] = set()
    for ax, form in zip(axes[0], forms):
        for k, (precision, fmt) in enumerate(combos):
            chosen = rows["form"].eq(form) & rows["precision"].eq(precision) & rows["memory_format"].eq(fmt)
            part = rows[chosen]
            part = part.set_index("model").reindex(models).dropna(subset=["throughput"])
            x = np.array([models.index(m) for m in part.index]) + (k - (len(combos) - 1) / 2) * width
            for xi, (_, row) in zip(x, part.iterrows()):
                ax.bar(xi, row["throughput"], width, **style.bar_style(row["flag"], colors(k)))
                seen |= {row["flag"]} - {""}
            ax.errorbar(x, part["throughput"], yerr=error_bars(part), fmt="none", ecolor="black", capsize=2)
        ax.set_xticks(range(len(models)), models, rotation=30, ha="right")
        ax.set_title(style.form_label(form))
        ax.set_xlabel("model")
        ax.set_ylabel("throughput (samples/s)\nmedian, bars: p5-p90")
    setting = {**sel.setting, "batch_size": batch}
    fig.suptitle(style.title("Precision and memory format", sel.hardware, setting))
    style.bottom_legend(fig, [*style.color_handles([f"{p}, {m}" for p, m in combos], colors),
                              *style.flag_handles(seen, bars=True)])
    return style.save(fig, out_dir, "precision_format", note=sel.note)


@register_figure("pct_of_peak")
def pct_of_peak(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Achieved share of the device's peak FLOP/s for deploy forms (a roofline-style ceiling view).

    pct_of_peak = 100 * 2 * MACs * throughput / peak FLOP/s; the bars scale it by the throughput spread.
    """
    if "pct_of_peak" not in df.columns or df["pct_of_peak"].isna().all():
        raise FigureSkipped("pct_of_peak is empty: no peak FLOP/s is known for this device "
                            "(bench.measure.flops.peak_tflops; CPUs have none)")
    sel = select(df, vary=("precision",), need="pct_of_peak")
    rows = sel.rows[sel.rows["form"].eq("deploy")].copy()
    if rows.empty:
        raise FigureSkipped("no deploy-form cell with pct_of_peak")
    for bound in ("lo", "hi"):
        rows[f"pct_of_peak_{bound}"] = rows["pct_of_peak"] * rows[f"throughput_{bound}"] / rows["throughput"]
    precisions = sorted(rows["precision"].unique())
    fig, axes = style.grid(len(precisions), max_cols=3, size=(5.0, 3.8))
    seen: set[str] = set()
    for ax, precision in zip(axes, precisions):
        part = rows[rows["precision"].eq(precision)]
        for model in model_order(part):
            group = part[part["model"].eq(model)].sort_values("batch_size")
            ax.errorbar(group["batch_size"], group["pct_of_peak"], yerr=error_bars(group, "pct_of_peak"),
                        marker="o", ms=4, capsize=2, label=model)
            seen |= style.mark_points(ax, group["batch_size"], group["pct_of_peak"], group["flag"])
        ax.axhline(100, color="black", ls="--", lw=1)
        style.batch_axis(ax, part["batch_size"])
        ax.set_ylim(0, max(105.0, float(part["pct_of_peak_hi"].max()) * 1.05))
        ax.set_title(f"{precision} (dashed: 100% of peak)")
        ax.set_ylabel("achieved / peak FLOP/s (%)\nFLOPs = 2 x MACs")
        ax.legend(handles=[*ax.get_legend_handles_labels()[0], *style.flag_handles(seen, bars=False)],
                  fontsize=7)
    fig.suptitle(style.title("Deploy forms: percent of peak compute", sel.hardware, sel.setting))
    return style.save(fig, out_dir, "pct_of_peak", note=sel.note)


def _common_batch(rows: pd.DataFrame, across: str, preferred: int = 128) -> int:
    """A batch measured for every value of `across` (128 when possible, else the largest such)."""
    sets = [set(group["batch_size"]) for _, group in rows.groupby(across)]
    common = set.intersection(*sets) if sets else set()
    if not common:
        raise FigureSkipped(f"no batch size measured for every {across}")
    return preferred if preferred in common else int(max(common))


@register_figure("hardware_comparison")
def hardware_comparison(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """The same cells on several hardware: throughput of each form and the speedup, side by side."""
    rows = one_resolution_per_model(drawable(df))
    hardware = sorted(rows["hardware"].dropna().unique()) if "hardware" in rows.columns else []
    if len(hardware) < 2:
        raise FigureSkipped("only one hardware in these results; pass runs from several hardware folders")
    rows, setting = fix_axes(rows)
    setting["batch_size"] = batch = _common_batch(rows, "hardware")
    rows = rows[rows["batch_size"].eq(batch)]
    models = [m for m in model_order(rows) if rows[rows["model"].eq(m)]["hardware"].nunique() > 1]
    if not models:
        raise FigureSkipped("no model measured on more than one hardware with the same settings")
    pairs = speedups(df).merge(rows[["model", "resolution"]].drop_duplicates())  # each model's drawn resolution
    for axis, value in setting.items():
        pairs = pairs[pairs[axis].eq(value)]
    fig, axes = plt.subplots(1, 3, figsize=(max(12.0, 2.2 * len(models) + 6), 4.8))
    seen: set[str] = set()
    for ax, form in zip(axes[:2], ("train", "deploy")):
        seen |= _hardware_bars(ax, rows[rows["form"].eq(form)], models, hardware, "throughput")
        ax.set_yscale("log")
        ax.set_title(style.form_label(form))
        ax.set_ylabel("throughput (samples/s, log)\nmedian, bars: p5-p90")
    _hardware_bars(axes[2], pairs.rename(columns=lambda c: c.replace("speedup", "value")), models, hardware,
                   "value")
    axes[2].axhline(1.0, color="black", lw=0.8)
    axes[2].set_title("speedup = train latency / deploy latency (ok pairs only)")
    axes[2].set_ylabel(f"speedup (x), bars: {interval_label(pairs)}")
    for ax in axes:
        ax.set_xlabel("model")
    fig.suptitle(style.title("Hardware comparison, same cells", " vs ".join(hardware), setting))
    style.bottom_legend(fig, [*style.color_handles(hardware, plt.get_cmap("Set2")),
                              *style.flag_handles(seen, bars=True)])
    return style.save(fig, out_dir, "hardware_comparison", note=excluded_note(df))


def _hardware_bars(ax, rows: pd.DataFrame, models: list[str], hardware: list[str], value: str) -> set[str]:
    """Grouped bars: one group per model, one bar per hardware, with error bars and flag hatching."""
    colors = plt.get_cmap("Set2")
    width = 0.8 / len(hardware)
    seen: set[str] = set()
    for k, hw in enumerate(hardware):
        part = rows[rows["hardware"].eq(hw)].set_index("model").reindex(models).dropna(subset=[value])
        x = np.array([models.index(m) for m in part.index]) + (k - (len(hardware) - 1) / 2) * width
        for xi, (_, row) in zip(x, part.iterrows()):
            flag = str(row.get("flag", "") or "")
            ax.bar(xi, row[value], width, **style.bar_style(flag, colors(k)))
            seen |= {flag} - {""}
        ax.errorbar(x, part[value], yerr=error_bars(part, value), fmt="none", ecolor="black", capsize=2)
    ax.set_xticks(range(len(models)), models, rotation=30, ha="right")
    return seen

