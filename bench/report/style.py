"""Shared look of every figure: Agg backend, colours per form, how flagged cells are drawn, saving.

Flagged cells are drawn, not dropped, and never look like clean ones: throttled cells are hatched (bars)
or ringed in red (points); mismatched deploy cells are cross-hatched in grey (bars) or crossed (points);
noisy cells (timings that judged themselves noisy; older rows: latency CV above 5%) are dotted (bars) or
boxed in grey (points); cells above the device's
peak FLOP/s (impossible: a timing bug) are outlined in purple.
Each figure that shows a flag gets a legend entry for it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator  # noqa: E402

FORM_COLORS: dict[str, str] = {"train": "#d95f02", "deploy": "#1b9e77"}
FORM_LABELS: dict[str, str] = {
    "train": "training form (multi-branch)", "deploy": "deploy form (re-parameterized)",
}
THROTTLE_HATCH = "////"
MISMATCH_HATCH = "xxxx"
MISMATCH_COLOR = "#bbbbbb"
THROTTLE_EDGE = "#d62728"
NOISY_HATCH = "...."
NOISY_EDGE = "#555555"
NOISY_LABEL = "noisy: wide timing spread (interference)"
OVER_PEAK_COLOR = "#9467bd"
OVER_PEAK_LABEL = "over-peak: above the device's peak FLOP/s (a timing bug)"
FORMATS: tuple[str, ...] = ("png", "svg")
TITLE_WIDTH = 80
"""Characters per title line: longer settings wrap instead of running off the figure."""

RC: dict[str, object] = {
    "figure.dpi": 120, "savefig.dpi": "figure", "axes.grid": True, "grid.alpha": 0.3,
    "figure.constrained_layout.use": True, "svg.fonttype": "none", "axes.titlesize": 11,
    "axes.labelsize": 10, "legend.fontsize": 8, "font.size": 9,
}
"""Applied around every registered figure (`registry.register_figure`), never globally. SVG text stays
text, so the figures can be edited and searched."""


def form_color(form: str) -> str:
    return FORM_COLORS.get(form, "#7570b3")


def form_label(form: str) -> str:
    return FORM_LABELS.get(form, form)


def bar_style(flag: str, color: str) -> dict:
    """Keyword arguments for `Axes.bar` that mark a flagged cell."""
    if "mismatch" in flag:
        return {"color": MISMATCH_COLOR, "hatch": MISMATCH_HATCH, "edgecolor": "black"}
    if "throttled" in flag:
        return {"color": color, "hatch": THROTTLE_HATCH, "edgecolor": THROTTLE_EDGE}
    if "over-peak" in flag:
        return {"color": color, "edgecolor": OVER_PEAK_COLOR, "linewidth": 2.5}
    if "noisy" in flag:
        return {"color": color, "hatch": NOISY_HATCH, "edgecolor": NOISY_EDGE}
    return {"color": color, "edgecolor": "none"}


def mark_points(ax: Axes, x, y, flags) -> set[str]:
    """Overlay markers on flagged points; returns the flags that occurred (for the legend)."""
    seen: set[str] = set()
    for xi, yi, flag in zip(x, y, flags):
        if "throttled" in flag:
            ax.scatter([xi], [yi], s=140, facecolors="none", edgecolors=THROTTLE_EDGE, linewidths=1.5,
                       zorder=5)
            seen.add("throttled")
        if "mismatch" in flag:
            ax.scatter([xi], [yi], s=90, marker="x", color="black", linewidths=1.8, zorder=6)
            seen.add("mismatch")
        if "noisy" in flag:
            ax.scatter([xi], [yi], s=110, marker="s", facecolors="none", edgecolors=NOISY_EDGE,
                       linewidths=1.2, zorder=5)
            seen.add("noisy")
        if "over-peak" in flag:
            ax.scatter([xi], [yi], s=170, marker="D", facecolors="none", edgecolors=OVER_PEAK_COLOR,
                       linewidths=1.5, zorder=5)
            seen.add("over-peak")
    return seen


def flag_handles(seen: set[str], bars: bool) -> list:
    """Legend proxies explaining the flag markers that appear in a figure."""
    handles = []
    if "throttled" in seen or any("throttled" in s for s in seen):
        handles.append(
            Patch(facecolor="white", hatch=THROTTLE_HATCH, edgecolor=THROTTLE_EDGE,
                  label="throttled (NVML clock-reduction reason)") if bars else
            Line2D([], [], marker="o", markersize=10, markerfacecolor="none", markeredgecolor=THROTTLE_EDGE,
                   linestyle="none", label="throttled (NVML clock-reduction reason)"))
    if "mismatch" in seen or any("mismatch" in s for s in seen):
        handles.append(
            Patch(facecolor=MISMATCH_COLOR, hatch=MISMATCH_HATCH, edgecolor="black",
                  label="mismatch: deploy output != train output (no speedup)") if bars else
            Line2D([], [], marker="x", color="black", linestyle="none",
                   label="mismatch: deploy output != train output (no speedup)"))
    if any("noisy" in s for s in seen):
        handles.append(
            Patch(facecolor="white", hatch=NOISY_HATCH, edgecolor=NOISY_EDGE, label=NOISY_LABEL) if bars else
            Line2D([], [], marker="s", markersize=9, markerfacecolor="none", markeredgecolor=NOISY_EDGE,
                   linestyle="none", label=NOISY_LABEL))
    if any("over-peak" in s for s in seen):
        handles.append(
            Patch(facecolor="white", edgecolor=OVER_PEAK_COLOR, linewidth=2.5, label=OVER_PEAK_LABEL) if bars else
            Line2D([], [], marker="D", markersize=9, markerfacecolor="none", markeredgecolor=OVER_PEAK_COLOR,
                   linestyle="none", label=OVER_PEAK_LABEL))
    return handles


def title(what: str, hardware: str, setting: dict[str, object]) -> str:
    """'<what>\\n<hardware> | fp32 | contiguous | eager | batch 128 | 224x224' (hardware and precision always
    shown; the input resolution whenever the selection knows it)."""
    parts = [hardware]
    for key in ("precision", "memory_format", "runtime", "mode", "batch_size", "input_size"):
        if setting.get(key) not in (None, ""):
            value = setting[key]
            parts.append(f"batch {value}" if key == "batch_size" else str(value))
    runs = f"\n{setting['runs_drawn']}" if setting.get("runs_drawn") else ""
    setting_line = textwrap.fill(" | ".join(parts), width=TITLE_WIDTH, break_long_words=False)
    return f"{what}\n{setting_line}{runs}"


def layout_bottom(fig: Figure, note: str) -> None:
    """Reserve a band at the bottom for the shared legend (if any) and, under it, the footnote.

    The constrained layout gets the rest of the figure, so neither overlaps the panels or each other.
    """
    width, height = fig.get_size_inches()
    lines = textwrap.wrap(note, width=max(60, int(width * 15))) if note else []
    note_h = 0.13 * len(lines) + 0.08 if lines else 0.0
    legend_h = 0.0
    if fig.legends:
        legend = fig.legends[0]
        legend_h = legend.get_window_extent(fig.canvas.get_renderer()).height / fig.dpi + 0.05
        legend.set_bbox_to_anchor((0.5, note_h / height), transform=fig.transFigure)
    band = (note_h + legend_h) / height
    if band:
        fig.get_layout_engine().set(rect=(0, band, 1, 1 - band))
    if lines:
        fig.text(0.01, 0.03 / height, "\n".join(lines), fontsize=7, color="#555555", ha="left", va="bottom")


def form_handles(forms) -> list:
    """Legend proxies for the colours of the forms present."""
    return [Patch(color=form_color(f), label=form_label(f)) for f in forms]


def batch_axis(ax: Axes, batches) -> None:
    """Log2 x axis with the measured batch sizes as plain tick labels."""
    ticks = sorted({int(b) for b in batches})
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("batch size")


def plain_log_y(ax: Axes) -> None:
    """Log y axis labelled 700, 1000, 2000 rather than 7x10^2."""
    ax.set_yscale("log")
    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(fmt)
    low, high = ax.get_ylim()
    if high / max(low, 1e-12) < 30:
        ax.yaxis.set_minor_locator(LogLocator(base=10, subs=(1.5, 2, 3, 5, 7)))
        ax.yaxis.set_minor_formatter(fmt)
        ax.tick_params(axis="y", which="minor", labelsize=7)
    else:
        ax.yaxis.set_minor_formatter(NullFormatter())


def save(fig: Figure, out_dir: Path, name: str, note: str = "") -> list[Path]:
    """Write `<name>.png` and `<name>.svg` (with `note` as footnote) into out_dir and close the figure."""
    layout_bottom(fig, note)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in FORMATS:
        path = out_dir / f"{name}.{fmt}"
        fig.savefig(path)
        paths.append(path)
    plt.close(fig)
    return paths


def grid(n: int, max_cols: int = 4, size: tuple[float, float] = (3.6, 2.9)) -> tuple[Figure, list[Axes]]:
    """A figure with n small-multiple panels laid out row-major; unused panels are hidden."""
    cols = max(1, min(n, max_cols))
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows + 0.8), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def bottom_legend(fig: Figure, handles: list) -> None:
    """One shared legend under all panels; `save` reserves its band above the footnote."""
    fig.legend(handles=handles, loc="lower center", ncol=min(4, max(1, len(handles))), frameon=False)


def color_handles(labels: list[str], colors) -> list:
    """Legend proxies: one coloured patch per label (colors: a colormap or a list)."""
    return [Patch(color=colors(k) if callable(colors) else colors[k], label=label)
            for k, label in enumerate(labels)]
