"""`bench profile`: a torch.profiler trace and a kernel summary for one cell, in a run of its own.

    bench profile --model repvgg_a0 --form deploy --batch 64 [--precision fp16] [--compare-forms]

Writes under `<out>/<hardware>/traces/` (see `bench.profile.capture`). `--compare-forms` profiles both
forms and writes the side-by-side counts that explain a re-parameterization speedup (fewer, larger
convolutions; no BN; no branch additions).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.profile.capture import CPU_THREADS, ProfileConfig, compare_forms, profile_table, profile_cell, resolve_device
from bench.results.layout import ROOT_DEFAULT_HELP, results_root
from bench.results.schema import CHOICES
from bench.results.cell import Cell
from bench.usage import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a registered model name (see `bench models`)")
    parser.add_argument("--form", choices=CHOICES["form"], default="deploy")
    parser.add_argument("--batch", type=int, default=64, help="batch size")
    parser.add_argument("--precision", choices=CHOICES["precision"], default="fp32")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--memory-format", choices=CHOICES["memory_format"], default="contiguous")
    parser.add_argument("--mode", choices=CHOICES["mode"], default="infer")
    parser.add_argument("--runtime", choices=("eager", "compile"), default="eager")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--out", type=Path, default=results_root(),
                        help=f"results root (default: {ROOT_DEFAULT_HELP})")
    parser.add_argument("--wait", type=int, default=1, help="schedule: steps skipped before warming up")
    parser.add_argument("--warmup", type=int, default=2, help="schedule: steps traced but discarded")
    parser.add_argument("--active", type=int, default=3, help="schedule: steps recorded and averaged")
    parser.add_argument("--top", type=int, default=20, help="rows in the top-by-time table")
    parser.add_argument("--threads", type=int, default=None,
                        help=f"torch CPU threads (default: {CPU_THREADS} on the CPU, as the committed CPU runs; "
                             "torch's default on CUDA)")
    parser.add_argument("--compare-forms", action="store_true",
                        help="profile training and deploy form and write the kernel-count table")


def config_from_args(args: argparse.Namespace) -> ProfileConfig:
    """Validate the arguments (names the valid choices) and build the config; bad input is a UsageError."""
    from bench.models.lookup import check_models

    check_models([args.model])
    for name in ("batch", "resolution", "active", "top"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be a positive integer; got {getattr(args, name)}")
    for name in ("wait", "warmup"):
        if getattr(args, name) < 0:
            raise UsageError(f"--{name} must be 0 or more steps; got {getattr(args, name)}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be a positive integer; got {args.threads}")
    if args.mode == "train_step" and (args.form == "deploy" or args.compare_forms):
        raise UsageError("--mode train_step profiles training forms only; use --form train "
                         "without --compare-forms")
    cell = Cell(model=args.model, form=args.form, mode=args.mode, batch_size=args.batch,
                precision=args.precision, memory_format=args.memory_format, runtime=args.runtime,
                resolution=args.resolution)
    return ProfileConfig(cell=cell, device=args.device, wait=args.wait, warmup=args.warmup,
                         active=args.active, top=args.top, threads=args.threads)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    resolve_device(config.device)
    if args.compare_forms:
        table, folder = compare_forms(config, args.out)
        print(profile_table(table.drop(columns=["model", "batch_size", "precision", "resolution", "device", "num_threads"])))
        print(f"kernel counts: {folder / 'kernel_counts.csv'}")
        return 0
    result = profile_cell(config, args.out)
    print(profile_table(result.categories))
    print(f"trace and summary: {result.trace_dir}")
    return 0
