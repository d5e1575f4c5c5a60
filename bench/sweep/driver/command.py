"""`bench run`: run a sweep from a preset or a TOML file, with any axis overridden on the command line.

    bench run --preset smoke
    bench run --preset paper --models repvgg_a0,resnet18 --batch 1,64 --precision fp16
    bench run --config my.toml --dry-run
    bench run --preset full --models repvgg_b0 --max-batch
    bench run --runtime list        # every runtime, and whether it can run here (and why not)

Everything is validated before anything runs; bad input raises a `bench.usage.UsageError` naming the
valid values, which `bench` turns into exit status 2.
Results go to `<out>/<hardware>/<run_id>/`; the run id derives from the config, so repeating a command
resumes its run (finished cells are not run again); `--run-id` picks another folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from bench.results.layout import ROOT_DEFAULT_HELP, results_root
from bench.results.schema import AXIS_SPECS
from bench.results.runlock import run_lock
from bench.sweep.plan.axes import CHOICES, ConfigError
from bench.sweep.local.executor import EXECUTORS, ISOLATIONS
from bench.sweep.plan.config import DEVICES, SweepConfig, load_file, load_preset, preset_names, with_overrides
from bench.sweep.driver.signals import Stage, Terminated, sigterm_raises, stopped_exit
from bench.usage import EXIT_USAGE

if TYPE_CHECKING:
    from bench.sweep.local.executor import Worker
    from bench.sweep.driver.runner import SweepPlan

AXIS_OPTIONS: dict[str, tuple[str, ...]] = {a.name: a.flags for a in AXIS_SPECS}
"""Each axis's CLI flags (`bench.results.schema.AXIS_SPECS`)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", help=f"a shipped sweep: {', '.join(preset_names())}")
    source.add_argument("--config", help="a TOML sweep file (same format as bench/sweep/plan/presets/*.toml)")
    axes = parser.add_argument_group("axis overrides (comma-separated lists replace the config's values)")
    for axis, flags in AXIS_OPTIONS.items():
        valid = f" ({'|'.join(CHOICES[axis])})" if axis in CHOICES else ""
        listing = "; 'list': which can run here and why not" if axis == "runtime" else ""
        axes.add_argument(*flags, dest=axis, metavar="LIST", help=f"{axis} values{valid}{listing}")
    parser.add_argument("--device", choices=DEVICES, help="default: the config's (auto = CUDA if present)")
    parser.add_argument("--out", type=Path, default=results_root(), help=f"results root (default: {ROOT_DEFAULT_HELP})")
    parser.add_argument("--run-id", help="results folder name (default: <config name>-<config hash>)")
    parser.add_argument("--timeout", type=float, help="per-cell timeout in seconds (default: the config's)")
    parser.add_argument("--seed", type=int, help="seed for weights, BN statistics and inputs")
    parser.add_argument("--threads", type=int,
                        help="torch CPU threads in each cell (default: the config's, else torch's)")
    parser.add_argument("--dry-run", action="store_true", help="list the cells and skip reasons, run nothing")
    parser.add_argument("--max-batch", action="store_true",
                        help="binary-search the largest batch that fits per model/form (CUDA only)")
    parser.add_argument("--retry-failed", action="store_true",
                        help="when resuming, run cells that ended as error or timeout again")
    parser.add_argument("--isolation", choices=ISOLATIONS, default="model",
                        help="model (default): one worker process per model and runtime serves all its "
                             "cells and pairs, replaced after a failure; cell: a fresh process per pair or "
                             "lone cell")
    parser.add_argument("--executor", choices=EXECUTORS, default="local",
                        help="local (default): worker processes on this machine; ray: every unit a task on "
                             "a Ray cluster, on each hardware kind (needs the ray extra)")
    parser.add_argument("--address", help="with --executor ray: the cluster (default auto: the one `ray "
                                          "start` began here; ray://HOST:10001 for a remote one)")
    parser.add_argument("--hardware", metavar="LIST",
                        help="with --executor ray: hardware ids to sweep (default: every hw: label of the cluster)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 if any cell of the run (resumed ones included) is mismatch, error or timeout")


def _split(axis: str, text: str) -> list[Any]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if axis not in ("batch_size", "resolution"):
        return items
    try:
        return [int(item) for item in items]
    except ValueError:
        raise ConfigError(f"{axis} must be a comma-separated list of integers; got '{text}'") from None


def build_config(args: argparse.Namespace) -> SweepConfig:
    if args.config:
        config = load_file(args.config)
    elif args.preset:
        config = load_preset(args.preset)
    else:
        raise ConfigError(f"give --preset ({', '.join(preset_names())}) or --config FILE")
    overrides = {axis: _split(axis, getattr(args, axis)) for axis in AXIS_OPTIONS
                 if getattr(args, axis, None) is not None}
    return with_overrides(config, overrides, device=args.device, cell_timeout_s=args.timeout,
                          seed=args.seed, num_threads=args.threads)


def _print_plan(plan: SweepPlan) -> None:
    skipped = [c for c in plan.cells if c.skip_reason]
    print(f"run {plan.run_id} on {plan.device} ({plan.hardware}) -> {plan.run_dir}")
    for i, cell in enumerate(plan.cells, 1):
        note = f"  SKIP: {cell.skip_reason}" if cell.skip_reason else ""
        print(f"  [{i}/{len(plan.cells)}] {cell.label()}{note}")
    print(f"{len(plan.cells)} cells: {len(plan.cells) - len(skipped)} to run, {len(skipped)} skipped "
          f"(timeout {plan.config.cell_timeout_s:g} s per cell)")


def print_runtimes() -> int:
    """`--runtime list`: each runtime, what it is, and on each device type whether it can run on this
    machine or why not."""
    from bench.sweep.worker.runtimes import availability, get

    by_device = {device: availability(device) for device in ("cpu", "cuda")}
    for name in by_device["cpu"]:
        print(f"{name}: {get(name).summary}")
        for device, reasons in by_device.items():
            print(f"  {device}: {'can run here' if reasons[name] is None else 'cannot run here: ' + reasons[name]}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Ctrl-C and SIGTERM are handled from the first instant (a worker is prestarted before planning) to
    the verdict: a sweep stopped at any point exits 130 or 143 with a message that says what it left
    (`bench.sweep.driver.signals`), and no worker or temporary folder behind."""
    if getattr(args, "runtime", None) == "list":
        return print_runtimes()
    if args.executor != "local" or args.address or args.hardware:
        from bench.sweep.ray.sweep import run_command

        return run_command(args, build_config)
    stage = Stage()
    with sigterm_raises():
        try:
            return _run_with_prestart(args, stage)
        except (KeyboardInterrupt, Terminated) as exc:
            return stopped_exit(exc, stage)


def _run_with_prestart(args: argparse.Namespace, stage: Stage) -> int:
    from bench.sweep.local.executor import Worker

    prestarted = None
    try:
        prestarted = None if args.dry_run or args.max_batch else Worker.prestart(args.device)
        return _run(args, prestarted, stage)
    finally:
        if prestarted is not None:
            prestarted.kill()


def _run(args: argparse.Namespace, prestarted: Optional[Worker], stage: Stage) -> int:
    from bench.sweep.tools.maxbatch import run_max_batch
    from bench.sweep.driver.runner import plan as make_plan, run_sweep

    plan = make_plan(build_config(args), out=args.out, run_id=args.run_id)
    if args.dry_run:
        _print_plan(plan)
        return 0
    if args.max_batch:
        stage.enter("probing", str(plan.run_dir / "max_batch.csv"))
        try:
            run_max_batch(plan.cells, plan.device, plan.config.seed, plan.config.cell_timeout_s,
                          plan.run_dir / "max_batch.csv")
        except RuntimeError as exc:
            print(f"bench run: {exc}", file=sys.stderr)
            return 2
        return 0
    print(f"run {plan.run_id} on {plan.device} ({plan.hardware}): {len(plan.cells)} cells -> {plan.run_dir}",
          flush=True)
    stage.enter("sweeping", str(plan.run_dir))
    try:
        with run_lock(plan.run_dir):
            summary = run_sweep(plan, retry_failed=args.retry_failed, isolation=args.isolation,
                                prestarted=prestarted)
    except OSError as exc:  # read-only folder, full disk: say where and why, not a traceback
        print(f"bench run: cannot write the run folder {plan.run_dir}: {exc.strerror or exc}"
              f"{f' ({exc.filename})' if exc.filename else ''}; free space or fix permissions, or pass "
              "--out DIR to write elsewhere (finished runs are read by bench report and bench compare "
              "without writing)", file=sys.stderr)
        return EXIT_USAGE
    stage.enter("judging")
    print(f"results: {summary.run_dir}")
    for line in summary.verdict.lines(args.strict):
        print(f"bench run: {line}", file=sys.stderr)
    return summary.verdict.exit_code(args.strict)

