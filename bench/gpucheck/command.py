"""`bench gpu-check [--presets blog,paper] [--budget-s 420] [--out DIR] [--archive FILE] [--dry-run]
[--assume h200]`: every CUDA path on a new GPU, and the presets worth keeping, within one time budget.

Steps, most valuable first (`bench.gpucheck.checks`): NVML, the fingerprint, the harness's timers against
triton's, the blog post's timer, the presets asked for (resumable: a cut one continues next time), the
check cells, the gpu tests, compile, the runtime ladder (a runtime this machine lacks is a WARN with its
reason), a profile. Each step has an estimate from the code's own caps and the device's per-step costs
(`bench.gpucheck.plan`); what does not fit the budget is skipped, and the summary says so. `--dry-run`
prints the plan (`--assume NAME` for a device that is not here) and runs nothing. Exit 0 if nothing
FAILed, 1 otherwise, 2 for bad input or (without --dry-run) no CUDA.
"""

from __future__ import annotations

import argparse
import datetime
import platform
from pathlib import Path
from typing import Optional

from bench.gpucheck import plan as planning
from bench.gpucheck import summary
from bench.gpucheck.checks import preset_plan, steps
from bench.gpucheck.steps import run_steps
from bench.results.layout import ROOT_DEFAULT_HELP, results_root
from bench.usage import UsageError, unknown

DEFAULT_BUDGET_S = 420.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=None,
                        help="folder to write (default: gpu-check-<UTC time>); must not exist yet")
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S,
                        help=f"wall-time budget in seconds for all steps (default {DEFAULT_BUDGET_S:.0f})")
    parser.add_argument("--presets", default="", metavar="LIST",
                        help="presets to run after the first checks, in this order (e.g. blog,paper); they "
                             "write to --results and resume there")
    parser.add_argument("--results", type=Path, default=results_root(),
                        help=f"results root for the presets' run folders (default: {ROOT_DEFAULT_HELP})")
    parser.add_argument("--archive", type=Path, default=None,
                        help="the archive to write (default: <out>.tar.gz beside the folder)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print each step with its estimated seconds and the plan's total; run nothing")
    parser.add_argument("--assume", choices=sorted(planning.PROFILES),
                        help="with --dry-run: plan for this device instead of the one here")


def cuda_missing() -> Optional[str]:
    """Why this machine cannot run the check, or None."""
    import torch

    if torch.cuda.is_available():
        return None
    return (f"needs a CUDA GPU, and torch {torch.__version__} sees none "
            f"(torch.cuda.is_available() is False, torch.version.cuda is {torch.version.cuda}); run it on the "
            f"GPU machine, or pass --dry-run --assume {'|'.join(sorted(planning.PROFILES))} to see its plan")


def _presets(text: str) -> list[str]:
    from bench.sweep.plan.config import preset_names

    names = [n.strip() for n in text.split(",") if n.strip()]
    missing = [n for n in names if n not in preset_names()]
    if missing:
        raise unknown("preset", missing, preset_names())
    if len(set(names)) != len(names):
        raise UsageError(f"--presets names a preset twice: {text}")
    return names


def _check_args(args: argparse.Namespace) -> None:
    if not args.budget_s > 0:
        raise UsageError(f"--budget-s must be > 0; got {args.budget_s}")
    if args.assume and not args.dry_run:
        raise UsageError("--assume plans for another device: use it with --dry-run")


def _device_profile(args: argparse.Namespace) -> tuple[planning.DeviceProfile, str]:
    """The profile to plan with, and how it was chosen."""
    if args.assume:
        profile = planning.PROFILES[args.assume]
        return profile, f"{profile.gpu_name} (assumed: --assume {args.assume})"
    import torch

    name = torch.cuda.get_device_name(0)
    profile = planning.detect_profile(name)
    return profile, f"{name} (profile {profile.name})"


def run(args: argparse.Namespace) -> int:
    presets = _presets(args.presets)
    _check_args(args)
    if not args.dry_run or not args.assume:
        reason = cuda_missing()
        if reason:
            raise UsageError(reason)
    profile, device = _device_profile(args)
    results_root = args.results.resolve()
    plan = planning.make_plan(steps(presets, results_root), lambda step: step.estimate(profile), args.budget_s)
    for line in planning.render_plan(plan, args.budget_s, device):
        print(line)
    if args.dry_run:
        return 0
    out = (args.out or Path(f"gpu-check-{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%SZ}")).resolve()
    if out.exists():
        raise UsageError(f"{out} exists; choose a new --out (nothing there is overwritten)")
    return _run(args, out, plan, presets, results_root, device)


def _run(args: argparse.Namespace, out: Path, plan: list, presets: list[str], results_root: Path,
         device: str) -> int:
    import torch

    from bench.gpucheck.verdicts import PEAK_WORDING

    out.mkdir(parents=True)
    runs = [(name, preset_plan(name, results_root).run_dir) for name in presets]
    header = [f"- GPU: {device}; torch {torch.__version__}, CUDA {torch.version.cuda}",
              f"- host: {platform.node()}; started {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} "
              f"UTC; budget {args.budget_s:.0f} s, planned {planning.planned_total_s(plan):.0f} s",
              f"- {PEAK_WORDING}"]
    archive = args.archive.resolve() if args.archive else None
    written: list[Path] = []

    def write(results: list) -> None:
        written[:] = summary.write(out, results, header, runs, archive)

    results = run_steps(plan, out, args.budget_s, after_each=write)
    write(results)
    print(f"{summary.overall(results)}: {written[0]}\narchive: {written[1]}")
    return 1 if summary.overall(results) == "FAIL" else 0
