"""`python -m bench verify`: deploy form == training form for this package's blocks and models
(`bench.models.verify`) and, for `timm:` names and globs, the parity audit against timm's own recipe.

`--models` takes registered names, `all`, and `timm:<name>` entries where a name may be a glob
(`timm:*`, `timm:repvit_*`): a timm glob means the re-parameterizable architectures it matches
(`bench.models.timm_catalog`); `--families` keeps one smallest variant per family (alone it means
`timm:*`). timm entries get the audit (`audit`), written as CSV and Markdown to
`<out>/parity/timm-<version>/<all|families|selection>.{csv,md}` after every model; `--resume` keeps the
models already there. Other entries get the block and model rows as before.

Exit status: 0 if every row passed (for the audit: every model exact and folding at least what timm's
recipe folds), 1 if any did not, 2 for bad input (an unknown name, a glob matching nothing, timm missing).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

from bench.models import verify as own_rows
from bench.parity import document
from bench.parity.audit import WRONG, ParityRow, audit
from bench.results.layout import ROOT_DEFAULT_HELP, parity_dir, results_root

PREFIX = "timm:"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    own_rows.add_arguments(parser)
    parser.add_argument("--families", action="store_true",
                        help="timm: one smallest variant per family (alone: of timm:*)")
    parser.add_argument("--out", type=Path, default=results_root(),
                        help=f"results root for the timm audit (default: {ROOT_DEFAULT_HELP})")
    parser.add_argument("--resume", action="store_true", help="timm audit: keep the models already in its CSV")


def split(spec: str) -> tuple[list[str], list[str]]:
    """(timm patterns without the prefix, other entries) of a `--models` value ('none' is no entry)."""
    entries = [e.strip() for e in spec.split(",") if e.strip() and e.strip() != "none"]
    return [e[len(PREFIX):] for e in entries if e.startswith(PREFIX)], [e for e in entries if not e.startswith(PREFIX)]


def _stem(patterns: list[str], families: bool) -> str:
    if patterns == ["*"]:
        return "families" if families else "all"
    return "selection"


def _line(row: ParityRow) -> str:
    err = "failed" if row.max_rel_err is None else f"{row.max_rel_err:.1e}"
    timm = "failed" if row.timm_max_rel_err is None else f"{row.timm_max_rel_err:.1e}"
    return (f"{row.model:26s} {row.verdict:19s} rel {err:8s} BN {row.batchnorms_train}->{row.batchnorms_left} "
            f"(timm {row.timm_batchnorms_left}) blocks {row.multibranch_train}->{row.multibranch_left} "
            f"(timm {row.timm_multibranch_left})  {row.deploy_recipe}  [{row.seconds:.0f}s]")


def run_audit(patterns: list[str], args: argparse.Namespace) -> int:
    from bench.models import timm_catalog

    try:
        archs = timm_catalog.reparameterizable(patterns or ["*"])
    except ImportError as exc:  # timm missing: bad input too (a glob matching nothing is a UsageError)
        print(f"bench verify: {exc}", file=sys.stderr)
        return 2
    if args.families:
        archs = timm_catalog.smallest_per_family(archs)
    import timm

    out = parity_dir(args.out, "timm", timm.__version__)
    stem, selection = _stem(patterns or ["*"], args.families), ",".join(f"'{PREFIX}{p}'" for p in patterns or ["*"])
    if args.families:
        selection += " --families"
    done = {r.model: r for r in document.read_rows(out / f"{stem}.csv")} if args.resume else {}
    print(f"timm {timm.__version__}: {len(archs)} re-parameterizable architectures, {len(done)} already audited; "
          f"writing {out / stem}.csv and .md", flush=True)
    rows: list[ParityRow] = []
    for arch in archs:
        row = done.get(arch.name) or audit(arch, resolution=args.resolution)
        rows.append(row)
        print(_line(row), flush=True)
        document.write(rows, out, stem, selection)
    failed = [r for r in rows if r.verdict == WRONG or r.behind_timm]
    print(f"{len(rows) - len(failed)}/{len(rows)} exact and folding at least what timm's recipe folds; "
          f"summary: {out / stem}.md")
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    patterns, others = split(args.models)
    if args.families and not patterns:
        patterns = ["*"]
    status = 0
    if others or not patterns:
        own = copy.copy(args)
        own.models = ",".join(others) or "none"
        status = own_rows.run(own)
        if status == 2:
            return status
    if patterns:
        status = max(status, run_audit(patterns, args))
    return status
