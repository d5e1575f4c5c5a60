"""`bench gpu-check [--out DIR] [--budget-s 420]`: validate every CUDA path on a new GPU in minutes.

Checks, most important first (what does not fit the budget is skipped, and the summary says so): NVML
presence, the `gpu` tests, RepVGG-A0 cells (batch 1 and 128, fp32 and fp16, eager and cudagraph), the
harness's timers against triton's, RepVGG-B3 at batch 128, the blog network with the post's naive timer,
one `profile --compare-forms`, one compile cell, the runtime ladder (compile_frozen, ONNX Runtime's CUDA and
TensorRT providers, TensorRT; runtimes this machine lacks are WARNed with their reason). Exit 0 if nothing FAILed, 1 otherwise, 2 without CUDA.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
from pathlib import Path
from typing import Callable

from bench.gpucheck import summary, verdicts
from bench.gpucheck.steps import Finished, Step, Verdict, python, run_steps

DEFAULT_BUDGET_S = 420.0
# Cells: short timing windows; the point is that every path runs and its numbers are plausible.
CELL_CONFIG = """name = "gpu-check"
description = "bench gpu-check cells"
[axes]
model = ["repvgg_a0"]
form = ["train", "deploy"]
mode = ["infer"]
batch_size = [128]
precision = ["fp32"]
memory_format = ["contiguous"]
runtime = ["eager"]
resolution = [224]
[run]
device = "cuda"
cell_timeout_s = 120
seed = 0
[timing]
min_samples = 10
min_time_s = 0.3
timeout_s = 2.0
warmup_max_s = 1.0
"""
BLOG_CELL = ("import json; cells = [c for c in json.load(open('notebooks/03_blog_claim.ipynb'))['cells'] "
             "if c['cell_type'] == 'code']; exec(''.join(cells[-1]['source']))")


def _run_cells(*overrides: str) -> Callable[[Path], list[str]]:
    def argv(work: Path) -> list[str]:
        config = work / "cells.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(CELL_CONFIG)
        return python("-m", "bench", "run", "--config", str(config), "--device", "cuda",
                      "--out", str(work / "results"), *overrides)

    return argv


def _pytest(work: Path) -> list[str]:
    # --continue-on-collection-errors: a test module that cannot be imported here (a missing optional
    # package) is reported as an error in the XML, and the gpu tests still run
    return python("-m", "pytest", "-m", "gpu", "-q", "-rs", "-p", "no:cacheprovider",
                  "--continue-on-collection-errors",
                  f"--junitxml={work / 'pytest.xml'}", "tests")


def _env_saved(done: Finished) -> Verdict:
    (done.work_dir / "env.json").write_text(done.stdout)
    return Verdict("PASS", ("saved as env/env.json",))


def steps() -> list[Step]:
    return [
        Step("nvml", "NVML readings the cells record", lambda w: python("-m", "bench.gpucheck.nvml_probe"),
             20, 5, verdicts.nvml),
        Step("env", "environment fingerprint", lambda w: python("-m", "bench", "env", "--json"), 30, 5,
             _env_saved),
        Step("pytest", "the gpu tests (pytest -m gpu)", _pytest, 150, 60, verdicts.junit),
        Step("cells", "RepVGG-A0, batch 1 and 128, fp32 and fp16, eager and cudagraph",
             _run_cells("--batch", "1,128", "--precision", "fp32,fp16", "--runtime", "eager,cudagraph"),
             150, 60, verdicts.results),
        Step("xcheck", "harness timers against triton do_bench / do_bench_cudagraph",
             lambda w: python("-m", "bench.gpucheck.xcheck"), 60, 25, verdicts.xcheck),
        Step("big", "RepVGG-B3 batch 128 fp32 eager", _run_cells("--models", "repvgg_b3"), 60, 25,
             verdicts.results),
        Step("blog", "blog network: the post's naive timer beside the harness",
             lambda w: python("-c", BLOG_CELL), 45, 15, verdicts.tail),
        Step("profile", "bench profile --compare-forms (RepVGG-A0, batch 128)",
             lambda w: python("-m", "bench", "profile", "--model", "repvgg_a0", "--batch", "128",
                              "--device", "cuda", "--compare-forms", "--out", str(w)), 45, 20, verdicts.tail),
        Step("compile", "one torch.compile cell (RepVGG-A0 deploy fp16 64x64)",
             _run_cells("--forms", "deploy", "--resolution", "64", "--precision", "fp16", "--runtime", "compile"),
             80, 40, verdicts.results),
        Step("runtimes", "runtime ladder: RepVGG-A0 b32 fp16 under compile_frozen, onnxruntime (CUDA provider), "
                         "onnxruntime_trt, tensorrt",
             _run_cells("--batch", "32", "--precision", "fp16",
                        "--runtime", "compile_frozen,onnxruntime,onnxruntime_trt,tensorrt"),
             240, 90, verdicts.runtime_results),
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=None,
                        help="folder to write (default: gpu-check-<UTC time>); must not exist yet")
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S,
                        help=f"wall-time budget in seconds for all checks (default {DEFAULT_BUDGET_S:.0f})")


def cuda_missing() -> str | None:
    """Why this machine cannot run the check, or None."""
    import torch

    if torch.cuda.is_available():
        return None
    return (f"bench gpu-check needs a CUDA GPU, and torch {torch.__version__} sees none "
            f"(torch.cuda.is_available() is False, torch.version.cuda is {torch.version.cuda}); run it on the "
            f"GPU machine")


def run(args: argparse.Namespace) -> int:
    if not args.budget_s > 0:
        print(f"bench gpu-check: --budget-s must be > 0; got {args.budget_s}", file=sys.stderr)
        return 2
    out = (args.out or Path(f"gpu-check-{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%SZ}")).resolve()
    if out.exists():
        print(f"bench gpu-check: {out} exists; choose a new --out (nothing there is overwritten)",
              file=sys.stderr)
        return 2
    reason = cuda_missing()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    import torch

    out.mkdir(parents=True)
    header = [f"- GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}, CUDA {torch.version.cuda}",
              f"- host: {platform.node()}; started {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC;"
              f" budget {args.budget_s:.0f} s", f"- {verdicts.PEAK_WORDING}"]
    results = run_steps(steps(), out, args.budget_s)
    summary_path, archive = summary.write(out, results, header)
    print(f"{summary.overall(results)}: {summary_path}\narchive: {archive}")
    return 1 if summary.overall(results) == "FAIL" else 0
