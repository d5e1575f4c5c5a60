"""int8: each form's quantization error and speed, per network, as a table and a figure; and the figure of
`bench quant` (`quant_figure`: the widest deploy kernel range beside both forms' int8 SQNR).

Read from the int8 rows (`bench.sweep.worker.int8` wrote them): SQNR, top-1 agreement and max relative error of
each form's int8 output against the training form's fp32 output, each form's fp32 / int8 speedup and the
deploy/train speedup in int8, all three speedups timed side by side (95% intervals). Networks are ordered
by family, RepVGG next to QARepVGG next to MobileOne (`FAMILY_ORDER`), the claim the figure is for: a
re-parameterized deploy kernel sums branches with their own BN scales, so its ranges widen and its int8
error grows; QARepVGG's blocks are designed to keep it small (Chu et al. 2022).

`WEIGHTS_CAVEAT` goes wherever these numbers are shown: the sweep's weights and BN statistics are random
and its inputs N(0, 1), so the figure shows how those weights quantize, not ImageNet accuracy.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report import style
from bench.report.frame import drawable, excluded_note, reference_batch
from bench.report.prepare import TITLE_ONLY_RESOLUTION, one_hardware, one_resolution_per_model, resolution_label
from bench.report.registry import FigureSkipped, register_figure

FAMILY_ORDER: tuple[str, ...] = ("repvgg", "qarepvgg", "mobileone")
"""Model-name prefixes in the order they are drawn; other networks follow by name."""
WEIGHTS_CAVEAT = ("Random weights and random BN statistics, N(0,1) inputs: these numbers show how these "
                  "weights quantize under this scheme, not ImageNet accuracy. QARepVGG's claim is about "
                  "trained weights; measure them with `bench quant --checkpoint MODEL=PATH`. Top-1 agreement on "
                  "a random network is a margin test: it often picks one or two classes for every input "
                  "(top1_classes).")
FORMS: tuple[str, ...] = ("train", "deploy")
KEYS: tuple[str, ...] = ("hardware", "model", "batch_size", "resolution", "runtime")
PER_FORM: dict[str, str] = {
    "sqnr_db": "int8_sqnr_db_vs_train_fp32", "top1_agreement": "int8_top1_agreement_vs_train_fp32",
    "rel_err": "int8_rel_err_vs_train_fp32", "int8_vs_fp32": "int8_speedup_vs_fp32_median",
    "int8_vs_fp32_lo": "int8_speedup_vs_fp32_ci_low", "int8_vs_fp32_hi": "int8_speedup_vs_fp32_ci_high",
}
"""Table column stem -> the form row's column (the table has `<stem>_train` and `<stem>_deploy`)."""


def family_rank(model: str) -> tuple[int, str]:
    for rank, prefix in enumerate(FAMILY_ORDER):
        if str(model).startswith(prefix):
            return rank, str(model)
    return len(FAMILY_ORDER), str(model)


def int8_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per int8 pair with both forms ok: KEYS, `<stem>_<form>` for each of PER_FORM, the deploy
    /train speedup in int8 (`deploy_vs_train`, `_lo`, `_hi`), `top1_classes` and the calibration."""
    stems = [f"{stem}_{form}" for form in FORMS for stem in PER_FORM]
    columns = [*KEYS, *stems, "deploy_vs_train", "deploy_vs_train_lo", "deploy_vs_train_hi", "top1_classes",
               "quant_calibration", "quant_calibration_samples", "quant_eval_samples"]
    if "precision" not in df.columns or "int8_sqnr_db_vs_train_fp32" not in df.columns:
        return pd.DataFrame(columns=columns)
    rows = drawable(df[df["precision"].eq("int8")])
    rows = rows[rows["status"].eq("ok")] if not rows.empty else rows
    if rows.empty:
        return pd.DataFrame(columns=columns)
    per_form = {form: rows[rows["form"].eq(form)].set_index(list(KEYS)) for form in FORMS}
    table = per_form["train"][[]].join(per_form["deploy"][[]], how="inner")
    for form in FORMS:
        for stem, column in PER_FORM.items():
            table[f"{stem}_{form}"] = per_form[form][column]
    deploy = per_form["deploy"]
    table["deploy_vs_train"] = deploy["speedup_median"]
    table["deploy_vs_train_lo"] = deploy["speedup_ci_low"]
    table["deploy_vs_train_hi"] = deploy["speedup_ci_high"]
    for column, source in (("top1_classes", "quant_eval_top1_classes"), ("quant_calibration", "quant_calibration"),
                           ("quant_calibration_samples", "quant_calibration_samples"),
                           ("quant_eval_samples", "quant_eval_samples")):
        table[column] = deploy[source] if source in deploy.columns else None
    table = table.reset_index()
    order = sorted(table.index, key=lambda i: (table.at[i, "hardware"], family_rank(table.at[i, "model"]),
                                               table.at[i, "batch_size"], table.at[i, "resolution"]))
    return table.loc[order, columns].reset_index(drop=True)


def _bars(ax, table: pd.DataFrame, stem: str, with_interval: bool, labels: list[str]) -> None:
    x = np.arange(len(table))
    width = 0.38
    for k, form in enumerate(FORMS):
        values = table[f"{stem}_{form}"].astype(float).to_numpy()
        yerr = None
        if with_interval:
            lo = table[f"{stem}_lo_{form}"].astype(float).to_numpy()
            hi = table[f"{stem}_hi_{form}"].astype(float).to_numpy()
            yerr = np.vstack([np.clip(values - lo, 0, None), np.clip(hi - values, 0, None)])
        ax.bar(x + (k - 0.5) * width, values, width, yerr=yerr, capsize=3, color=style.form_color(form),
               label=style.form_label(form))
    ax.set_xticks(x, labels, fontsize=8)


def _sqnr_panel(ax, table: pd.DataFrame, labels: list[str]) -> None:
    """Each form's int8 SQNR per row of `table` (index 0..n-1), its top-1 agreement written on the bar."""
    _bars(ax, table, "sqnr_db", with_interval=False, labels=labels)
    for i, row in table.iterrows():
        for k, form in enumerate(FORMS):
            agree = row[f"top1_agreement_{form}"]
            if pd.notna(agree):
                ax.annotate(f"{100 * agree:.0f}%", (i + (k - 0.5) * 0.38, row[f"sqnr_db_{form}"]),
                            ha="center", va="bottom", fontsize=7)
    ax.set_ylabel("SQNR (dB) vs training form fp32")
    ax.set_title("int8 error: SQNR, higher is better (6 dB ~ 1 bit);\nlabels: top-1 agreement", fontsize=9)


@register_figure("int8_quantization")
def int8_quantization(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Per network: int8 SQNR of each form (with top-1 agreement) and each form's int8 / fp32 speedup."""
    hardware = one_hardware(df)
    table = int8_table(df)
    if table.empty:
        raise FigureSkipped("no int8 pair with both forms ok (run with --precision int8 --runtime onnxruntime)")
    batch = reference_batch(table)
    table = one_resolution_per_model(table[table["batch_size"].eq(batch)]).reset_index(drop=True)
    fig, (error_ax, speed_ax) = style.plt.subplots(1, 2, figsize=(max(8.0, 1.6 * len(table) + 5), 4.2))
    _sqnr_panel(error_ax, table, labels=list(table["model"]))
    speed_labels = [f"{m}\ndeploy/train in int8:\n{s:.2f}x" if pd.notna(s) else str(m)
                    for m, s in zip(table["model"], table["deploy_vs_train"])]
    _bars(speed_ax, table, "int8_vs_fp32", with_interval=True, labels=speed_labels)
    speed_ax.axhline(1.0, color="black", linewidth=0.8)
    speed_ax.set_ylabel("fp32 latency / int8 latency")
    speed_ax.set_title("int8 speedup over fp32, same form, side by side\n(> 1: int8 faster; 95% CI)", fontsize=9)
    setting = {"precision": "int8", "runtime": ", ".join(sorted(set(table["runtime"]))), "batch_size": batch,
               TITLE_ONLY_RESOLUTION: resolution_label(table)}
    fig.suptitle(style.title("int8 post-training quantization, each form", hardware, setting), fontsize=10)
    style.bottom_legend(fig, style.form_handles(FORMS))
    scheme = ", ".join(sorted({f"{c} calibration on {int(n)} inputs" for c, n in
                               zip(table["quant_calibration"], table["quant_calibration_samples"]) if pd.notna(n)}))
    note = " ".join(part for part in (WEIGHTS_CAVEAT, scheme, excluded_note(df)) if part)
    return style.save(fig, out_dir, "int8_quantization", note=note)


def quant_figure(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """`bench quant`'s rows (`bench.quant.command.QuantRow` columns): per network, the widest deploy
    kernel's [min, max] and each form's int8 SQNR per quantizer (top-1 agreement as labels), RepVGG next
    to QARepVGG next to MobileOne."""
    from bench.report.style import RC

    table = table.iloc[sorted(range(len(table)), key=lambda i: (family_rank(table["model"].iloc[i]), i))]
    table = table.reset_index(drop=True)
    several = table["quantizer"].nunique() > 1
    labels = [f"{m}\n{q}" if several else str(m) for m, q in zip(table["model"], table["quantizer"])]
    kernels = table.drop_duplicates("model").reset_index(drop=True)
    with style.plt.rc_context(RC):
        fig, (kernel_ax, error_ax) = style.plt.subplots(1, 2, figsize=(max(8.0, 1.6 * len(table) + 5), 4.2))
        x = np.arange(len(kernels))
        low, high = kernels["kernel_low"].astype(float), kernels["kernel_high"].astype(float)
        kernel_ax.bar(x, high - low, 0.5, bottom=low, color=style.form_color("deploy"))
        for i in x:
            kernel_ax.annotate(f"{high[i] - low[i]:.3g}", (i, high[i]), ha="center", va="bottom", fontsize=7)
        kernel_ax.axhline(0.0, color="black", linewidth=0.8)
        kernel_ax.set_xticks(x, kernels["model"], fontsize=8)
        kernel_ax.set_ylabel("weight value")
        kernel_ax.set_title("widest deploy conv kernel: [min, max]\n(what a per-tensor int8 scale must cover)",
                            fontsize=9)
        _sqnr_panel(error_ax, table, labels)
        first = table.iloc[0]
        schemes = list(dict.fromkeys(table["quant_scheme"]))
        setting = f"batch {first['batch_size']} | {first['resolution']}x{first['resolution']}"
        setting += f" | {schemes[0]}" if len(schemes) == 1 else " | schemes in the footnote"
        fig.suptitle("int8 post-training quantization per network\n" + textwrap.fill(setting, width=130),
                     fontsize=9)
        style.bottom_legend(fig, style.form_handles(FORMS))
        random = table["weights"].astype(str).str.startswith("random").any()
        weights = "; ".join(f"{m}: {w}" for m, w in dict.fromkeys(zip(table["model"], table["weights"])))
        listed = " ".join(f"{q}: {s}." for q, s in dict.fromkeys(zip(table["quantizer"], table["quant_scheme"])))
        note = " ".join(part for part in (WEIGHTS_CAVEAT if random else "", f"Weights: {weights}.",
                                          listed if len(schemes) > 1 else "") if part)
        return style.save(fig, out_dir, "quant", note=note)
