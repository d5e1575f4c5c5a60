"""`python -m bench verify`'s block and model rows (the command, `bench.parity.command`, adds the timm
parity audit): deploy form == training form for every block type and, on request, networks.

Each row: random weights, random BN statistics (`bench.models.init.randomize_bn_`), eval mode, the block
or network against `to_deploy` of itself, in float32 and float64, with the BatchNorms and multi-branch
blocks removed (`bench.reparam.fold_report`). Exit status 1 if any row fails, including a deploy form
that folded nothing although something was foldable.
"""

from __future__ import annotations

import argparse
from functools import partial
from typing import Callable

from torch import nn

from bench.models.agreement import BLOCK_TOLERANCES, tolerance_for
from bench.models.equivalence import DTYPES, Equivalence, check_model, check_module
from bench.models.registry import info, names
from bench.reparam import ACBlock, ConvBN, DiverseBranchBlock, MobileOneBlock, RepVGGBlock
from bench.usage import pick

BLOCK_INPUT = (2, 16, 17, 17)
"""Odd spatial size, so strided convs see an uneven border."""

BLOCK_CASES: dict[str, Callable[[], nn.Module]] = {
    "ConvBN 3x3": partial(ConvBN, 16, 32, 3),
    "ConvBN 3x3 s2 g2": partial(ConvBN, 16, 32, 3, stride=2, groups=2),
    "ConvBN 1x1": partial(ConvBN, 16, 32, 1),
    "ConvBN 7x7 s2": partial(ConvBN, 16, 8, 7, stride=2),
    "RepVGGBlock identity": partial(RepVGGBlock, 16, 16),
    "RepVGGBlock s2": partial(RepVGGBlock, 16, 32, stride=2),
    "RepVGGBlock g4 identity": partial(RepVGGBlock, 16, 16, groups=4),
    "RepVGGBlock g2 s2": partial(RepVGGBlock, 16, 32, stride=2, groups=2),
    "RepVGGBlock SE identity": partial(RepVGGBlock, 16, 16, use_se=True),
    "RepVGGBlock SE s2": partial(RepVGGBlock, 16, 32, stride=2, use_se=True),
    "ACBlock 3x3": partial(ACBlock, 16, 32, 3),
    "ACBlock 3x3 s2 g2": partial(ACBlock, 16, 32, 3, stride=2, groups=2),
    "ACBlock 5x5": partial(ACBlock, 16, 16, 5, padding=2),
    "ACBlock 3x3 p0 (cropped)": partial(ACBlock, 16, 32, 3, padding=0),
    "RepVGGBlock p2": partial(RepVGGBlock, 16, 32, padding=2),
    "DiverseBranchBlock 3x3 p2": partial(DiverseBranchBlock, 16, 32, 3, padding=2),
    "DiverseBranchBlock 3x3 in=out": partial(DiverseBranchBlock, 16, 16, 3),
    "DiverseBranchBlock 3x3 s2": partial(DiverseBranchBlock, 16, 32, 3, stride=2),
    "DiverseBranchBlock 3x3 g2": partial(DiverseBranchBlock, 16, 32, 3, groups=2),
    "DiverseBranchBlock depthwise": partial(DiverseBranchBlock, 16, 16, 3, groups=16),
    "DiverseBranchBlock 5x5 s2": partial(DiverseBranchBlock, 16, 16, 5, stride=2, padding=2),
    "MobileOneBlock dw k=4 skip": partial(MobileOneBlock, 16, 16, 3, groups=16, num_conv_branches=4),
    "MobileOneBlock dw s2": partial(MobileOneBlock, 16, 16, 3, stride=2, groups=16),
    "MobileOneBlock pw k=4 skip": partial(MobileOneBlock, 16, 16, 1, num_conv_branches=4),
    "MobileOneBlock pw 16->32 SE": partial(MobileOneBlock, 16, 32, 1, use_se=True),
    "MobileOneBlock 3x3 s2 (stem)": partial(MobileOneBlock, 16, 32, 3, stride=2),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", default="none", help="'all' (every registered built-in model), "
                        "'none' (default) or a comma-separated list; timm:<name or glob> entries "
                        "(timm:*, timm:repvit_*) get the parity audit against timm's own recipe")
    parser.add_argument("--no-blocks", action="store_true", help="skip the per-block rows")
    parser.add_argument("--dtypes", default="float32,float64", help=f"comma-separated, from {', '.join(DTYPES)}")
    parser.add_argument("--resolution", type=int, default=64, help="network input side (default 64)")


def _model_names(spec: str) -> list[str]:
    if spec == "none":
        return []
    if spec == "all":
        return names()
    selected = [n.strip() for n in spec.split(",") if n.strip()]
    for name in selected:
        info(name)  # raises a UsageError naming the known models
    return selected


def _print_row(kind: str, row: Equivalence) -> None:
    verdict = "pass" if row.passed else "FAIL"
    fold = row.fold
    folded = "" if fold is None else (
        f"  BN {fold.batchnorms_before}->{fold.batchnorms_after}, "
        f"blocks {fold.multibranch_before}->{fold.multibranch_after}"
    )
    print(f"{kind:6s} {row.label:32s} {row.dtype:8s} {row.max_abs:11.3e} {row.max_rel:11.3e} "
          f"{row.tolerance:9.1e}  {verdict}{folded}", flush=True)
    widest = row.widest_kernel
    if kind == "model" and widest is not None:
        print(f"       widest deploy kernel: {widest.layer} [{widest.low:.3g}, {widest.high:.3g}]", flush=True)
    problem = None if fold is None else fold.problem()
    if problem:
        print(f"       {row.label}: {problem}", flush=True)


def run(args: argparse.Namespace) -> int:
    models, dtypes = _model_names(args.models), pick("dtype", args.dtypes, DTYPES)
    print(f"{'kind':6s} {'name':32s} {'dtype':8s} {'max_abs':>11s} {'max_rel':>11s} {'tol_rel':>9s}  result")
    rows: list[Equivalence] = []
    for dtype in dtypes:
        for label, build in ({} if args.no_blocks else BLOCK_CASES).items():
            row = check_module(build, BLOCK_INPUT, label, DTYPES[dtype],
                               tolerance_for(DTYPES[dtype], BLOCK_TOLERANCES))
            rows.append(row)
            _print_row("block", row)
    for name in models:
        for dtype in dtypes:
            row = check_model(name, DTYPES[dtype], resolution=args.resolution)
            rows.append(row)
            _print_row("model", row)
    failed = [r for r in rows if not r.passed]
    print(f"{len(rows) - len(failed)}/{len(rows)} passed (max_rel = max|deploy - train| / max|train|)")
    return 1 if failed else 0
