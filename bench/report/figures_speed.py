"""Speed figures: the paper's Figure 1 views, train vs deploy bars, throughput vs batch, speedup heatmap.

Throughput is samples/s at the median latency; every error bar is the latency's p5..p90 carried through
throughput = `bench.results.derived.throughput` (see `bench.report.frame.drawable`).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm

from bench.report import style
from bench.report.frame import error_bars, interval_label, reference_batch, speedups
from bench.report.panels import forms_by_batch
from bench.report.paper import with_paper
from bench.report.prepare import Selection, model_order, select
from bench.report.registry import FigureSkipped, register_figure

TPUT_LABEL = "throughput (samples/s)\nmedian, bars: p5-p90"


def _at_reference_batch(sel: Selection) -> Selection:
    batch = reference_batch(sel.rows)
    sel.rows = sel.rows[sel.rows["batch_size"].eq(batch)]
    sel.setting["batch_size"] = batch
    return sel


def _scatter_forms(ax, rows: pd.DataFrame, x: str, y: str, xerr: bool) -> set[str]:
    """Both forms of each model as points (train hollow, deploy filled) joined by a thin line."""
    seen: set[str] = set()
    for form, group in rows.groupby("form"):
        err = error_bars(group)
        ax.errorbar(group[x], group[y], xerr=err if xerr else None, yerr=None if xerr else err,
                    fmt="o", ms=7, capsize=3, color=style.form_color(form), label=style.form_label(form),
                    mfc="white" if form == "train" else style.form_color(form))
        seen |= style.mark_points(ax, group[x], group[y], group["flag"])
    anchors = []
    for model, group in rows.groupby("model"):
        ordered = group.sort_values("form", key=lambda s: s.map({"train": 0, "deploy": 1}))
        ax.plot(ordered[x], ordered[y], color="#999999", lw=0.8, zorder=0)
        top = ordered.iloc[-1]
        anchors.append((str(model), float(top[x]), float(top[y])))
    for (model, px, py), offset in zip(anchors, label_offsets([(px, py) for _, px, py in anchors])):
        ax.annotate(model, (px, py), textcoords="offset points", xytext=(5, offset), fontsize=7)
    return seen


def label_offsets(points: list[tuple[float, float]], near: float = 0.06, step: float = 9.0) -> list[float]:
    """Vertical offsets (points) for labels at `points`, so labels of nearby points (three models at
    11.7M parameters) stack instead of overprinting: a point within `near` (relative, in x and in y) of an
    already placed one goes `step` points higher than the highest of them."""
    placed: list[tuple[float, float, float]] = []
    offsets = []
    for px, py in points:
        close = [o for qx, qy, o in placed
                 if abs(px - qx) <= near * max(abs(px), abs(qx), 1e-12)
                 and abs(py - qy) <= near * max(abs(py), abs(qy), 1e-12)]
        offset = max(close) + step if close else 4.0
        placed.append((px, py, offset))
        offsets.append(offset)
    return offsets


@register_figure("speed_vs_params")
def speed_vs_params(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Throughput against parameter count, both forms (the paper's Fig. 1 with params on the x axis)."""
    sel = _at_reference_batch(select(df, need="params_m"))
    return _scatter_figure(sel, sel.rows, ("params_m", "parameters (millions, of the form measured)"),
                           ("throughput", TPUT_LABEL), "Throughput vs parameters", out_dir, "speed_vs_params")


@register_figure("speed_vs_top1")
def speed_vs_top1(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Measured throughput here against the paper's ImageNet top-1 (RepVGG paper, Fig. 1)."""
    sel = _at_reference_batch(select(df))
    rows = with_paper(sel.rows)
    unpublished = sorted(set(rows.loc[rows["paper_top1"].isna(), "model"].astype(str)))
    rows = rows[rows["paper_top1"].notna()]
    if rows.empty:
        raise FigureSkipped("no measured model has a published top-1 (bench/models/paper.py)")
    if unpublished:
        sel.note = " ".join(n for n in (f"Not drawn (no published top-1): {', '.join(unpublished)}.", sel.note) if n)
    return _scatter_figure(sel, rows, ("throughput", "throughput measured here (samples/s), median, bars: p5-p90"),
                           ("paper_top1", "ImageNet top-1 (%), as published"),
                           "Speed vs accuracy (RepVGG paper Fig. 1, measured here)", out_dir, "speed_vs_top1")


def _scatter_figure(sel: Selection, rows: pd.DataFrame, x: tuple[str, str], y: tuple[str, str], title: str,
                    out_dir: Path, name: str) -> list[Path]:
    """One scatter of both forms, `x` and `y` as (column, axis label); error bars on the throughput axis."""
    fig, ax = plt.subplots(figsize=(7.5, 5))
    seen = _scatter_forms(ax, rows, x[0], y[0], xerr=x[0] == "throughput")
    ax.set_xlabel(x[1])
    ax.set_ylabel(y[1])
    ax.set_title(style.title(title, sel.hardware, sel.setting))
    ax.legend(handles=[*ax.get_legend_handles_labels()[0], *style.flag_handles(seen, bars=False)])
    return style.save(fig, out_dir, name, note=sel.note)


@register_figure("throughput_forms")
def throughput_forms(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Bars of training vs deploy form per model at the reference batch, labelled with the speedup."""
    sel = _at_reference_batch(select(df))
    models = model_order(sel.rows)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(models) + 2), 4.8))
    seen: set[str] = set()
    width = 0.38
    for offset, form in ((-width / 2, "train"), (width / 2, "deploy")):
        group = sel.rows[sel.rows["form"].eq(form)].set_index("model").reindex(models)
        present = group["throughput"].notna().to_numpy()
        x = np.arange(len(models))[present] + offset
        group = group[present]
        for xi, (_, row) in zip(x, group.iterrows()):
            ax.bar(xi, row["throughput"], width, **style.bar_style(row["flag"], style.form_color(form)))
            if row["flag"]:
                seen.add(row["flag"])
        ax.errorbar(x, group["throughput"], yerr=error_bars(group), fmt="none", ecolor="black", capsize=3)
    _label_speedups(ax, df, sel, models, width)
    ax.set_xticks(np.arange(len(models)), models, rotation=30, ha="right")
    ax.set_xlabel("model")
    ax.set_ylabel(TPUT_LABEL)
    ax.set_title(style.title("Training vs deploy form throughput", sel.hardware, sel.setting))
    forms = [f for f in ("train", "deploy") if f in set(sel.rows["form"])]
    ax.legend(handles=[*style.form_handles(forms), *style.flag_handles(seen, bars=True)])
    return style.save(fig, out_dir, "throughput_forms", note=sel.note)


def _label_speedups(ax, df: pd.DataFrame, sel: Selection, models: list[str], width: float) -> None:
    """Write 'N.NNx' above each deploy bar whose pair is valid (both cells ok)."""
    pairs = _pairs_in(df, sel)
    for i, model in enumerate(models):
        row = pairs[pairs["model"].eq(model)]
        if len(row):
            top = max(row["throughput_hi_deploy"].iloc[0], row["throughput_hi_train"].iloc[0])
            ax.annotate(f"{row['speedup'].iloc[0]:.2f}x", (i + width / 2, top), textcoords="offset points",
                        xytext=(0, 3), ha="center", fontsize=7)


def _pairs_in(df: pd.DataFrame, sel: Selection) -> pd.DataFrame:
    """Speedup pairs restricted to the selection's fixed axes."""
    pairs = speedups(df)
    for axis, value in sel.setting.items():
        if axis in pairs.columns:
            pairs = pairs[pairs[axis].eq(value)]
    return pairs


@register_figure("throughput_vs_batch")
def throughput_vs_batch(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Throughput vs batch size on log-log axes, both forms, one panel per model (the blog's figure)."""
    def draw(ax, group: pd.DataFrame, form: str) -> None:
        ax.errorbar(group["batch_size"], group["throughput"], yerr=error_bars(group), marker="o", ms=4,
                    capsize=2, color=style.form_color(form), label=style.form_label(form))

    sel = select(df)
    fig = forms_by_batch(sel, "throughput", "throughput (samples/s)",
                         "Throughput vs batch size (log-log; median, bars p5-p90)", draw=draw, log_y=True)
    return style.save(fig, out_dir, "throughput_vs_batch", note=sel.note)


@register_figure("speedup_heatmap")
def speedup_heatmap(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Deploy/train throughput ratio per model and batch; cells without a valid pair say why."""
    sel = select(df)
    pairs = _pairs_in(df, sel)
    if pairs.empty:
        raise FigureSkipped("no (train, deploy) pair with both cells ok")
    models = [m for m in model_order(sel.rows) if m in set(pairs["model"])]
    batches = sorted(sel.rows["batch_size"].unique())
    grid = pairs.pivot_table(index="model", columns="batch_size", values="speedup", aggfunc="first")
    grid = grid.reindex(index=models, columns=batches)
    fig, ax = plt.subplots(figsize=(max(7.0, 1.1 * len(batches) + 4.5), max(3.5, 0.5 * len(models) + 2.2)))
    values = grid.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    norm = TwoSlopeNorm(vcenter=1.0, vmin=min(0.5, finite.min()), vmax=max(1.5, finite.max()))
    image = ax.imshow(np.ma.masked_invalid(values), cmap="RdYlGn", norm=norm, aspect="auto")
    ax.set_facecolor("#eeeeee")
    seen = _annotate_heatmap(ax, pairs, sel.rows, models, batches)
    ax.set_xticks(range(len(batches)), [str(b) for b in batches])
    ax.set_yticks(range(len(models)), models)
    ax.set_xlabel("batch size")
    ax.set_ylabel("model")
    ax.grid(False)
    fig.colorbar(image, ax=ax, label="speedup = train latency / deploy latency (x)")
    ax.set_title(style.title(f"Deploy-form speedup (ok pairs only; [{interval_label(pairs)}])", sel.hardware,
                             sel.setting))
    if seen:
        style.bottom_legend(fig, style.flag_handles(seen, bars=True))
    note = "grey: no valid pair (mismatch: deploy output wrong; n/a: a form not measured ok). " + sel.note
    return style.save(fig, out_dir, "speedup_heatmap", note=note)


def _annotate_heatmap(ax, pairs: pd.DataFrame, rows: pd.DataFrame, models: list[str],
                      batches: list[int]) -> set[str]:
    """Text in each cell: ratio and bounds, or why there is none; flagged pairs drawn with their own
    flag's style (`style.bar_style`); returns the flags seen, for the legend."""
    seen: set[str] = set()
    for i, model in enumerate(models):
        for j, batch in enumerate(batches):
            pair = pairs[pairs["model"].eq(model) & pairs["batch_size"].eq(batch)]
            if len(pair):
                p = pair.iloc[0]
                bounds = (f"\n[{p['speedup_lo']:.2f}-{p['speedup_hi']:.2f}]"
                          if np.isfinite(p["speedup_lo"]) and np.isfinite(p["speedup_hi"]) else "")
                ax.text(j, i, f"{p['speedup']:.2f}x{bounds}", ha="center", va="center", fontsize=7)
                if p["flag"]:
                    seen.update(p["flag"].split("+"))
                    look = style.bar_style(p["flag"], "none")
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                               lw=look.get("linewidth", 0), hatch=look.get("hatch"),
                                               edgecolor=look.get("edgecolor")))
                continue
            cell = rows[rows["model"].eq(model) & rows["batch_size"].eq(batch)]
            reason = "mismatch" if cell["status"].eq("mismatch").any() else "n/a"
            ax.text(j, i, reason, ha="center", va="center", fontsize=7, color="#555555")
    return seen
