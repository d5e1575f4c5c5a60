"""`python -m bench models`: every registered model with its size, MACs and its paper's figures.

Params and MACs are counted for the deploy form (what the paper reports) at 224x224 unless told
otherwise; the training-form parameter count is shown beside it. Nothing is cached.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from bench.models.complexity import model_complexity
from bench.models.registry import info, names

COLUMNS: tuple[str, ...] = (
    "name", "family", "params_m", "params_train_m", "macs_g", "paper_params_m", "paper_gmacs",
    "paper_speed_1080ti_b128", "paper_top1",
)
"""params_m / macs_g: deploy form, measured here; paper_*: RepVGG paper Table 4, or MobileOne's Table 8
(see bench.models.paper)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--names", default="", help="comma-separated subset (default: all registered models); "
                        "external models as timm:<name> or torchvision:<name>")
    parser.add_argument("--resolution", type=int, default=224, help="input side for MACs (default 224)")
    parser.add_argument("--csv", action="store_true", help="print CSV instead of an aligned table")


def _fmt(value: Optional[float], digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def model_row(name: str, resolution: int = 224) -> dict[str, str]:
    """One table row as strings, keyed by `COLUMNS`."""
    model_info = info(name)
    deploy = model_complexity(name, deploy=True, resolution=resolution)
    train = model_complexity(name, deploy=False, resolution=resolution)
    paper = model_info.paper
    return {
        "name": name,
        "family": model_info.family,
        "params_m": _fmt(deploy.params / 1e6, 3),
        "params_train_m": _fmt(train.params / 1e6, 3),
        "macs_g": _fmt(deploy.macs / 1e9, 3),
        "paper_params_m": _fmt(paper and paper.params_m, 2),
        "paper_gmacs": "-" if not (paper and paper.gmacs) else f"{paper.gmacs:g}",  # as published
        "paper_speed_1080ti_b128": _fmt(paper and paper.speed_1080ti_b128, 0),
        "paper_top1": _fmt(paper and paper.top1, 2),
    }


def render(rows: list[dict[str, str]], csv: bool = False) -> str:
    if csv:
        return "\n".join([",".join(COLUMNS)] + [",".join(row[c] for c in COLUMNS) for row in rows])
    widths = {c: max(len(c), *(len(row[c]) for row in rows)) for c in COLUMNS}
    line = lambda cells: "  ".join(  # noqa: E731
        cells[c].ljust(widths[c]) if c in ("name", "family") else cells[c].rjust(widths[c]) for c in COLUMNS
    )
    return "\n".join([line({c: c for c in COLUMNS})] + [line(row) for row in rows])


def _notes(selected: list[str]) -> list[str]:
    lines = []
    for name in selected:
        model_info = info(name)
        if model_info.notes:
            lines.append(f"  {name}: {model_info.notes}")
        if model_info.paper is not None and "Table 4, 120" not in model_info.paper.source:
            lines.append(f"  {name}: paper figures from {model_info.paper.source}")
    return lines


def run(args: argparse.Namespace) -> int:
    selected = [n.strip() for n in args.names.split(",") if n.strip()] or names()
    rows, failed = [], []
    for name in selected:
        try:
            rows.append(model_row(name, args.resolution))
        except (ValueError, ImportError) as exc:
            failed.append(name)
            print(f"bench models: {exc}", file=sys.stderr)
    if rows:
        print(render(rows, args.csv))
        notes = _notes([row["name"] for row in rows])
        if notes and not args.csv:
            print(f"\nparams/MACs: deploy form, {args.resolution}x{args.resolution}; "
                  "paper: RepVGG (CVPR 2021) Table 4, its GFLOPs = multiply-adds, its params truncated "
                  "to 2 decimals, unless a note names another source\nnotes:")
            print("\n".join(notes))
    return 1 if failed else 0
