"""Small multiples against batch size: one panel per model, one line per form (memory, throughput)."""

from __future__ import annotations

from typing import Callable, Optional

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bench.report import style
from bench.report.prepare import Selection, model_order

Draw = Callable[[Axes, pd.DataFrame, str], None]
"""Draws one form's rows (sorted by batch) into a panel: (axes, rows, form)."""


def forms_by_batch(sel: Selection, column: str, ylabel: str, title: str,
                   draw: Optional[Draw] = None, log_y: bool = False) -> Figure:
    """`column` against batch size per model; a plain line per form unless `draw` says otherwise.
    Flagged points are marked, and the legend under the panels names the forms and the flags seen."""
    models = model_order(sel.rows)
    fig, axes = style.grid(len(models))
    seen: set[str] = set()
    for ax, model in zip(axes, models):
        for form, group in sel.rows[sel.rows["model"].eq(model)].groupby("form"):
            group = group.sort_values("batch_size")
            if draw is None:
                ax.plot(group["batch_size"], group[column], marker="o", ms=4, color=style.form_color(form),
                        label=style.form_label(form))
            else:
                draw(ax, group, form)
            seen |= style.mark_points(ax, group["batch_size"], group[column], group["flag"])
        style.batch_axis(ax, sel.rows["batch_size"])
        if log_y:
            style.plain_log_y(ax)
        ax.set_title(model)
        ax.set_ylabel(ylabel)
    forms = [f for f in ("train", "deploy") if f in set(sel.rows["form"])]
    fig.suptitle(style.title(title, sel.hardware, sel.setting))
    style.bottom_legend(fig, [*style.form_handles(forms), *style.flag_handles(seen, bars=False)])
    return fig
