"""The steps of `bench gpu-check`, most valuable first, each with its command, estimate and evaluation.

Order, and why: NVML and the fingerprint (seconds; they say what every later number can carry); the
harness's timers against triton's (without that agreement no number can be trusted); the blog post's
timer beside the harness's (seconds, and the point of the `blog` preset); the presets asked for, in the
order given (the results to keep: resumable, so a cut one continues next time); the RepVGG-A0 cells
through every CUDA path (fp16, CUDA graphs); the `gpu` tests; torch.compile; the runtime ladder (the
other runtimes on the GPU: compile with freezing, ONNX Runtime's CUDA and TensorRT providers, TensorRT);
a profile; RepVGG-B3 at batch 128 only where the `paper` preset does not time it already.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from bench.gpucheck import plan, verdicts
from bench.gpucheck.steps import Finished, Step, Verdict, python

if TYPE_CHECKING:
    from bench.sweep.plan.config import SweepConfig
    from bench.sweep.driver.runner import SweepPlan

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
"""The check cells: short timing windows; the point is that every path runs and its numbers are plausible."""


def _axis_flags(overrides: Mapping[str, Sequence[Any]]) -> list[str]:
    from bench.results.schema import AXIS_SPECS

    flags = {a.name: a.flags[0] for a in AXIS_SPECS}
    return [part for axis, values in overrides.items() for part in (flags[axis], ",".join(map(str, values)))]


def cell_sweep(name: str, title: str, overrides: Mapping[str, Sequence[Any]],
               verdict: Callable[[Finished], Verdict] = verdicts.results) -> Step:
    """`bench run` of CELL_CONFIG with some axes replaced, into `<work>/results`."""
    def argv(work: Path) -> list[str]:
        config = work / "cells.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(CELL_CONFIG)
        return python("-m", "bench", "run", "--config", str(config), "--device", "cuda",
                      "--out", str(work / "results"), *_axis_flags(overrides))

    def estimate(profile: plan.DeviceProfile) -> plan.Estimate:
        from bench.sweep.plan.config import load_text, with_overrides

        return plan.sweep_estimate(profile, with_overrides(load_text(CELL_CONFIG, "gpu-check"), overrides))

    return Step(name, title, argv, verdict, estimate)


def preset_config(name: str) -> SweepConfig:
    from bench.sweep.plan.config import load_preset, with_overrides

    return with_overrides(load_preset(name), device="cuda")


def preset_run_id(name: str) -> str:
    """`<preset>-<hash>` over the preset's config and the hardware id (not the machine: each lent machine is
    a fresh one), so the next gpu-check on this kind of GPU resumes a cut preset from its committed folder."""
    from bench.measure.env import hardware_slug

    return preset_config(name).run_id("cuda", machine=hardware_slug("cuda"))


def preset_plan(name: str, results_root: Path) -> SweepPlan:
    """The preset's `bench.sweep.driver.runner.SweepPlan` as its step's `bench run` makes it (CUDA only)."""
    from bench.sweep.driver.runner import plan as sweep_plan

    return sweep_plan(preset_config(name), out=results_root, run_id=preset_run_id(name))


def preset_step(name: str, results_root: Path) -> Step:
    """`bench run --preset NAME` into the results root, where the same command resumes it next time."""
    return Step(f"preset-{name}", f"preset {name} (results to keep; resumes where a cut run stopped)",
                lambda work: python("-m", "bench", "run", "--preset", name, "--device", "cuda",
                                    "--out", str(results_root), "--run-id", preset_run_id(name)),
                lambda done: verdicts.preset(done, preset_plan(name, results_root)),
                lambda profile: plan.sweep_estimate(profile, preset_config(name)), resumable=True)


def _pytest(work: Path) -> list[str]:
    # --continue-on-collection-errors: a test module that cannot be imported here (a missing optional
    # package) is reported in the XML, and the gpu tests still run; the plugin marks gpu tests there
    return python("-m", "pytest", "-m", "gpu", "-q", "-rs", "-p", "no:cacheprovider", "-p",
                  "bench.gpucheck.pytest_plugin", "--continue-on-collection-errors",
                  f"--junitxml={work / 'pytest.xml'}", "tests")


def _env_saved(done: Finished) -> Verdict:
    (done.work_dir / "env.json").write_text(done.stdout)
    return Verdict("PASS", ("saved as env/env.json",))


def _quick(work_s: float, detail: str) -> Callable[[plan.DeviceProfile], plan.Estimate]:
    return lambda profile: plan.process_estimate(profile, work_s, detail)


PROFILE_BATCH = 128
LADDER_RUNTIMES: tuple[str, ...] = ("compile_frozen", "onnxruntime", "onnxruntime_trt", "tensorrt")
"""The runtimes of the ladder step beyond the ones the cells and compile steps run (a runtime this machine
lacks is a skipped row, which that step WARNs with its reason; the plan counts only what can run here)."""


def steps(presets: Sequence[str] = (), results_root: Path | None = None) -> list[Step]:
    """Every step, in the order of the module docstring; presets write under `results_root` (default:
    `bench.results.layout.results_root`)."""
    from bench.results.layout import results_root as default_root

    results_root = default_root() if results_root is None else results_root
    head = [
        Step("nvml", "NVML readings the cells record", lambda w: python("-m", "bench.gpucheck.nvml_probe"),
             verdicts.nvml, _quick(1.0, "a few NVML queries")),
        Step("env", "environment fingerprint", lambda w: python("-m", "bench", "env", "--json"), _env_saved,
             _quick(3.0, "fingerprint, git state and preflight checks")),
        Step("xcheck", "harness timers against triton do_bench / do_bench_cudagraph",
             lambda w: python("-m", "bench.gpucheck.xcheck"), verdicts.xcheck, plan.xcheck_estimate),
        Step("blog", "blog network: the post's naive timer beside the harness",
             lambda w: python("-m", "bench.gpucheck.blog_timer"), verdicts.blog, plan.blog_timer_estimate),
    ]
    tail = [
        cell_sweep("cells", "RepVGG-A0, batch 1 and 128, fp32 and fp16, eager and cudagraph",
                   {"batch_size": [1, 128], "precision": ["fp32", "fp16"], "runtime": ["eager", "cudagraph"]}),
        Step("pytest", "the gpu tests (pytest -m gpu)", _pytest, verdicts.junit, plan.pytest_estimate),
        cell_sweep("compile", "one torch.compile cell (RepVGG-A0 deploy fp16 64x64)",
                   {"form": ["deploy"], "resolution": [64], "precision": ["fp16"], "runtime": ["compile"]}),
        cell_sweep("runtimes", "runtime ladder: RepVGG-A0 b32 fp16 under compile_frozen, onnxruntime (CUDA "
                               "provider), onnxruntime_trt, tensorrt",
                   {"batch_size": [32], "precision": ["fp16"], "runtime": list(LADDER_RUNTIMES)},
                   verdicts.runtime_results),
        Step("profile", f"bench profile --compare-forms (RepVGG-A0, batch {PROFILE_BATCH})",
             lambda w: python("-m", "bench", "profile", "--model", "repvgg_a0", "--batch", str(PROFILE_BATCH),
                              "--device", "cuda", "--compare-forms", "--out", str(w)), verdicts.tail,
             lambda profile: plan.profile_estimate(profile, PROFILE_BATCH)),
    ]
    if "paper" not in presets:
        tail.append(cell_sweep("big", "RepVGG-B3 batch 128 fp32 eager", {"model": ["repvgg_b3"]}))
    return [*head, *(preset_step(name, results_root) for name in presets), *tail]
