"""The audit's files: one CSV row per model (`audit.ParityRow`) and a Markdown summary, both rewritten
atomically after every model, so an interrupted audit keeps what it measured and `--resume` goes on."""

from __future__ import annotations

import dataclasses
import io
import typing
from pathlib import Path
from typing import Optional

import pandas as pd

from bench.results.table_writer import table
from bench.models.agreement import PARITY_FLOOR_FACTOR, PARITY_FP64
from bench.parity.audit import COLUMNS, COMPLETE, VERDICTS, ParityRow
from bench.results.io import atomic_write


def _parse(text: str, hint: object) -> object:
    """A CSV cell back to its field's type: '' is None for Optional fields and '' for str ones."""
    kinds = typing.get_args(hint) or (hint,)
    if text == "":
        return None if type(None) in kinds else ""
    kind = next(k for k in kinds if k is not type(None))
    if kind is bool:
        return text == "True"
    return int(float(text)) if kind is int else kind(text)


def read_rows(csv: Path) -> list[ParityRow]:
    """The rows of an earlier audit file (none if it does not exist)."""
    if not csv.is_file():
        return []
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{csv}: not an audit file of this version (missing {', '.join(missing)}); "
                         "move it away or run without --resume")
    hints = typing.get_type_hints(ParityRow)
    return [ParityRow(**{k: _parse(v, hints[k]) for k, v in record.items()})
            for record in frame[list(COLUMNS)].to_dict("records")]


def _num(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.2g}"


def _count(value: Optional[int]) -> str:
    return "" if value is None else str(int(value))


def _family_rows(rows: list[ParityRow]) -> list[list[str]]:
    out = []
    for family in sorted({r.family for r in rows}):
        group = [r for r in rows if r.family == family]
        errs = [r.max_rel_err for r in group if r.max_rel_err is not None]
        timm_errs = [r.timm_max_rel_err for r in group if r.timm_max_rel_err is not None]
        verdicts = ", ".join(f"{sum(r.verdict == v for r in group)} {v}" for v in VERDICTS
                             if any(r.verdict == v for r in group))
        out.append([family, str(len(group)), verdicts, _num(max(errs, default=None)),
                    _num(max(timm_errs, default=None)),
                    f"{sum(r.batchnorms_left or 0 for r in group)} / {sum(r.timm_batchnorms_left or 0 for r in group)}",
                    f"{sum(r.multibranch_left or 0 for r in group)} / "
                    f"{sum(r.timm_multibranch_left or 0 for r in group)}"])
    return out


def _model_rows(rows: list[ParityRow]) -> list[list[str]]:
    return [[r.model, r.input, r.verdict, _num(r.max_rel_err), _num(r.reorder_rel_err),
             f"{r.batchnorms_train} -> {_count(r.batchnorms_left)}",
             f"{r.multibranch_train} -> {_count(r.multibranch_left)}", r.deploy_recipe, r.timm_verdict,
             _num(r.timm_max_rel_err), _count(r.timm_batchnorms_left), _count(r.timm_multibranch_left)]
            for r in rows]


def markdown(rows: list[ParityRow], selection: str) -> str:
    """The summary: versions and settings, verdict counts, one line per family, the exceptions, every model."""
    first = rows[0] if rows else None
    import torch

    lines = [
        "# Parity audit: deploy forms of timm models in float64", "",
        f"`python -m bench verify --models {selection}`: timm {first.timm_version if first else '?'}, "
        f"torch {torch.__version__}, random weights and BN statistics (seed 0), one input of 1x3x64x64 unless "
        f"the model needs its own size, CPU. Exact means max |deploy - train| / max |train| <= {PARITY_FP64:g}, "
        f"or, where the training form moves more than that when its own sums are reordered (run in "
        f"channels_last: 'train reordered'), within {PARITY_FLOOR_FACTOR:g}x of that. "
        "Ours: `bench.reparam.to_deploy`, the form `bench run` times. timm: `timm.utils.model."
        "reparameterize_model`, run with float64 as the default dtype (its `fuse()` builds new modules in it).",
        "",
        "BatchNorms and blocks left: what a deploy form did not fold (blocks: modules whose own conversion "
        "would still change them). Verdicts: exact and complete (nothing foldable left, at least what timm's "
        "recipe folds), exact but partial, wrong.", "",
    ]
    counts = [[v, str(sum(r.verdict == v for r in rows)), str(sum(r.timm_verdict == v for r in rows))]
              for v in VERDICTS]
    lines += [table(["verdict", "ours (models)", "timm's recipe (models)"], counts, markdown=True), ""]
    lines += ["## Per family", "", table(
        ["family", "models", "ours", "max rel err ours", "max rel err timm", "BatchNorms left ours / timm",
         "blocks left ours / timm"], _family_rows(rows), markdown=True), ""]
    odd = [r for r in rows if r.verdict != COMPLETE or r.behind_timm or r.reason]
    lines += ["## Exceptions and notes", ""]
    lines += [f"- `{r.model}`: {r.verdict}" + (f"; {r.reason}" if r.reason else "") for r in odd] or ["- none"]
    timm_short = [r for r in rows if r.timm_verdict != COMPLETE]
    lines += ["", "timm's own recipe is not complete for: " + (
        ", ".join(f"`{r.model}` ({r.timm_reason})" for r in timm_short) if timm_short else "none") + ".", ""]
    lines += ["## Every model", "", table(
        ["model", "input", "ours", "rel err", "train reordered", "BatchNorms", "blocks", "recipe", "timm",
         "timm rel err",
         "timm BatchNorms left", "timm blocks left"], _model_rows(rows), markdown=True), ""]
    return "\n".join(lines)


def write(rows: list[ParityRow], out: Path, stem: str, selection: str) -> tuple[Path, Path]:
    """`<out>/<stem>.csv` and `<out>/<stem>.md`, written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    csv, md = out / f"{stem}.csv", out / f"{stem}.md"
    buffer = io.StringIO()
    frame = pd.DataFrame([dataclasses.asdict(r) for r in rows], columns=list(COLUMNS), dtype=object)
    frame.to_csv(buffer, index=False)
    atomic_write(csv, lambda tmp: tmp.write_text(buffer.getvalue()))
    text = markdown(rows, selection)
    atomic_write(md, lambda tmp: tmp.write_text(text))
    return csv, md
