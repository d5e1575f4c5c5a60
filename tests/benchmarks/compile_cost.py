"""Compile seconds per unit of a torch.compile sweep, before and after sharing one compile across batch
sizes, and the check that the shared (dynamic-batch) graph runs as fast as a static one. Writes JSON.

    PYTHONPATH=. python tests/benchmarks/compile_cost.py --model repvgg_a0 --resolution 64 \
        --batches 1,8,16 --runtime compile --out compile_cost.json

before: every unit compiles its own static graph (`torch._dynamo.reset()` between units, as a fresh
worker would; `dynamic=False`). after: `bench.sweep.worker.runtimes.compiled` as the sweep runs it: one compile
per form with the batch marked dynamic, reused by the other batches (batch 1 compiles statically; a
batch outside the range Dynamo's guards allow recompiles, counted in `new_graphs`: the rows'
`compile_graphs`).
Each phase runs in a process of its own with an empty Inductor cache folder (Inductor also caches
compiled kernels on disk by their source, so phases sharing a folder would warm each other), and
Inductor's FX-graph cache is off, so every compile is cold, as the first of each graph in a run.
check: at one batch, the dynamic graph's and a static graph's latency, timed in alternating blocks
side by side (the machine's load cancels), and their outputs' largest difference.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch


def _cell(model: str, form: str, batch: int, resolution: int, runtime: str):
    from bench.results.cell import Cell

    return Cell(model=model, form=form, mode="infer", batch_size=batch, precision="fp32",
                memory_format="contiguous", runtime=runtime, resolution=resolution)


def _input(batch: int, resolution: int) -> torch.Tensor:
    return torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(batch))


def _first_call_s(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def before(forms: dict, batches: list[int], resolution: int, runtime: str) -> list[dict]:
    """One static compile per unit, Dynamo reset between units."""
    from bench.sweep.worker.runtimes import compiled

    out = []
    for form, module in forms.items():
        for batch in batches:
            torch._dynamo.reset()
            x = _input(batch, resolution)
            model = torch.compile(module, dynamic=False)
            fn = compiled._call(model, x, runtime == "compile_frozen")
            with compiled._compiling(runtime == "compile_frozen", None):
                seconds = _first_call_s(fn)
            out.append({"form": form, "batch": batch, "compile_s": seconds})
    return out


def after(forms: dict, batches: list[int], resolution: int, runtime: str, model_name: str) -> list[dict]:
    """The sweep's runtime: shared per form, batch dynamic from 2 on."""
    from bench.sweep.worker import runtimes

    torch._dynamo.reset()
    rt = runtimes.get(runtime)
    rt.shared.clear()
    out = []
    for form, module in forms.items():
        for batch in batches:
            cell = _cell(model_name, form, batch, resolution, runtime)
            opened = rt.open(module, _input(batch, resolution), cell, torch.device("cpu"))
            settings = dict(opened.record.settings)
            out.append({"form": form, "batch": batch, "compile_s": opened.record.first_call_ms / 1000.0,
                        "batch_graph": settings["batch"], "shared": settings["shared"],
                        "new_graphs": opened.record.graphs})
    return out


def check(module, batch: int, resolution: int, runtime: str, blocks: int, calls: int) -> dict:
    """Static vs dynamic graph at one batch: latency medians from alternating blocks, output difference."""
    from bench.sweep.worker.runtimes import compiled

    frozen = runtime == "compile_frozen"
    torch._dynamo.reset()
    x_static, x_dynamic = _input(batch, resolution), _input(batch, resolution)
    static = compiled._call(torch.compile(module, dynamic=False), x_static, frozen)
    torch._dynamo.mark_dynamic(x_dynamic, 0)
    dynamic = compiled._call(torch.compile(module), x_dynamic, frozen)
    with compiled._compiling(frozen, None):
        out_static, out_dynamic = static(), dynamic()
    times: dict[str, list[float]] = {"static": [], "dynamic": []}
    for block in range(blocks):
        order = (("static", static), ("dynamic", dynamic)) if block % 2 == 0 else (("dynamic", dynamic), ("static", static))
        for name, fn in order:
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - start) / calls * 1000.0)
    ratios = [d / s for d, s in zip(times["dynamic"], times["static"])]
    return {"batch": batch, "static_ms_median": statistics.median(times["static"]),
            "dynamic_ms_median": statistics.median(times["dynamic"]),
            "dynamic_over_static_median": statistics.median(ratios),
            "blocks": blocks, "calls_per_block": calls,
            "max_abs_diff": float((out_static - out_dynamic).abs().max())}


def _phase(args: argparse.Namespace) -> object:
    import torch._inductor.config as inductor_config

    from bench.models.build import deploy_form, training_form

    torch.set_num_threads(args.threads)
    inductor_config.fx_graph_cache = False
    batches = [int(b) for b in args.batches.split(",")]
    train = training_form(args.model, 0)
    forms = {"train": train, "deploy": deploy_form(train)}
    if args.phase == "before":
        return before(forms, batches, args.resolution, args.runtime)
    if args.phase == "after":
        return after(forms, batches, args.resolution, args.runtime, args.model)
    return check(forms["train"], args.check_batch, args.resolution, args.runtime, args.blocks, args.calls)


def _run_phase(phase: str, argv: list[str]) -> object:
    """One phase in a fresh process with an empty Inductor cache folder; its JSON result."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache, "TRITON_CACHE_DIR": f"{cache}/triton"}
        done = subprocess.run([sys.executable, __file__, *argv, "--phase", phase], env=env, check=True,
                              stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="repvgg_a0")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batches", default="1,8,16")
    parser.add_argument("--runtime", default="compile", choices=("compile", "compile_frozen"))
    parser.add_argument("--check-batch", type=int, default=8)
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="compile_cost.json")
    parser.add_argument("--phase", choices=("before", "after", "check"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(_phase(args)))
        return
    argv = sys.argv[1:]
    result = {"model": args.model, "resolution": args.resolution, "batches": args.batches,
              "runtime": args.runtime, "torch": torch.__version__, "threads": args.threads,
              "load_avg_1m_start": os.getloadavg()[0]}
    for phase in ("before", "after", "check"):
        result[phase] = _run_phase(phase, argv)
    for key in ("before", "after"):
        units = result[key]
        result[f"{key}_compile_s_per_unit"] = sum(u["compile_s"] for u in units) / len(units)
    result["load_avg_1m_end"] = os.getloadavg()[0]
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k not in ("before", "after")}, indent=2))


if __name__ == "__main__":
    main()
