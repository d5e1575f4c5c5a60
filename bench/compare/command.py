"""`bench compare BASELINE NEW`: verdict table and CI exit code (method: `bench.compare.comparison`).

BASELINE and NEW are each a run folder `results/<hardware>/<run_id>/`, or a baseline file
`results/baselines/<hardware>.parquet` (its raw samples beside it). Exit codes: 0 pass (AMBIGUOUS never
fails), 1 a SLOWER cell or a correctness gate regression (plus whatever `--fail-on` adds), 2 the inputs
cannot be compared (unreadable, or different hardware without `--across-hardware`): a `UsageError`.

`--speedups-only` compares only the deploy/train speedup of each configuration (a ratio inside one run),
which is allowed across hardware; it fails on a speedup SMALLER beyond `--threshold`, a speedup LOST
(deploy no longer faster), a MISSING pair or a gate regression (`bench.compare.speedups_only`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.compare.comparison import FAIL_ON_CHOICES, check_fail_on, compare, load_run
from bench.compare.speedups_only import RENDERERS as SPEEDUP_RENDERERS, compare_speedups_only
from bench.compare.render import RENDERERS
from bench.compare.verdicts import Settings
from bench.usage import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("baseline", type=Path, metavar="BASELINE",
                        help="baseline: results/baselines/<hardware>.parquet or a run folder")
    parser.add_argument("new", type=Path, metavar="NEW", help="new run folder results/<hardware>/<run_id>")
    parser.add_argument("--threshold", type=float, default=0.05,
                        help="practical threshold as a fraction: slower means ratio > 1 + t (default 0.05)")
    parser.add_argument("--fdr", type=float, default=0.05,
                        help="false discovery rate q of the Benjamini-Hochberg correction (default 0.05)")
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--memory-tolerance-mib", type=float, default=1.0,
                        help="report peak_allocated_mib changes beyond this (default 1 MiB)")
    parser.add_argument("--across-hardware", action="store_true",
                        help="allow different hardware: a side-by-side throughput table, no timing verdicts")
    parser.add_argument("--fail-on", default="", metavar="LIST",
                        help=f"also exit 1 on: comma list of {', '.join(FAIL_ON_CHOICES)} (default: none)")
    parser.add_argument("--speedups-only", action="store_true",
                        help="compare only deploy/train speedups (ratios within each run; any hardware); "
                             "fails on SMALLER beyond --threshold, LOST, MISSING pairs or a gate regression. "
                             "Across machines give a generous --threshold (the CPU CI uses 0.67: 40%% smaller)")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--markdown", action="store_true", help="Markdown (for a pull-request comment)")
    fmt.add_argument("--json", action="store_true", help="JSON (for machines)")
    parser.add_argument("--all", action="store_true", help="list every cell, not only the notable ones")


def run(args: argparse.Namespace) -> int:
    fail_on = check_fail_on(tuple(f for f in args.fail_on.split(",") if f))
    if args.speedups_only:
        return _speedups_only(args, fail_on)
    settings = Settings(threshold=args.threshold, fdr=args.fdr, n_boot=args.n_boot, seed=args.seed,
                        memory_tolerance_mib=args.memory_tolerance_mib)
    result = compare(load_run(args.baseline), load_run(args.new), settings,
                     across_hardware=args.across_hardware, fail_on=fail_on)
    if args.json:
        print(RENDERERS["json"](result))
    elif args.markdown:
        print(RENDERERS["markdown"](result, show_all=True))
    else:
        print(RENDERERS["text"](result, show_all=args.all))
    return result.exit_code()


def _speedups_only(args: argparse.Namespace, fail_on: tuple[str, ...]) -> int:
    if fail_on or args.across_hardware:
        raise UsageError("--fail-on and --across-hardware do not apply with --speedups-only (which compares "
                         "across hardware and always fails on SMALLER, LOST or MISSING speedups)")
    settings = Settings(threshold=args.threshold, fdr=args.fdr, n_boot=args.n_boot, seed=args.seed)
    result = compare_speedups_only(load_run(args.baseline), load_run(args.new), settings)
    print(SPEEDUP_RENDERERS["json" if args.json else "markdown" if args.markdown else "text"](result))
    return result.exit_code()
