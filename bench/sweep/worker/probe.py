"""One `--max-batch` probe, inside its own process: `python -m bench.sweep.worker.probe SPEC.json OUTCOME.json`.

Does one batch fit? The cell's form is built as a sweep builds it (`bench.models.build_form`; once per
search group, by the parent, and loaded here), prepared (device, dtype, memory format) and called twice, so
optimizer state and autotuner workspaces are allocated too. Nothing is timed. Any exception becomes the outcome's status ('oom' or 'error') and text.
A fresh process per probe leaves no fragmented allocator behind to shrink the next one.
"""

from __future__ import annotations

import pickle
import sys
import traceback
from pathlib import Path
from typing import Optional

import torch

from bench.models.user import MODEL_CODE_FAILURES
from bench.models import workload
from bench.sweep.worker import faults, runtimes
from bench.sweep.worker.failures import classify, describe
from bench.sweep.local.orphans import watch_parent
from bench.sweep.protocol import CellOutcome, CellSpec, write_atomic


def load_form(spec: CellSpec) -> torch.nn.Module:
    """The cell's model and form on the CPU: the parent's saved build (`spec.module_path`) where it loads,
    else built here (`bench.models.build_form`, the same seeded weights). A module whose class this process
    cannot import (an own model's factory file) fails to load and is built instead."""
    from bench.models.build import build_form

    if spec.module_path is not None:
        try:
            return torch.load(spec.module_path, map_location="cpu", weights_only=False)
        except (ImportError, AttributeError, pickle.UnpicklingError, OSError, RuntimeError) as exc:
            print(f"probe: could not load the saved build ({type(exc).__name__}: {exc}); building it",
                  file=sys.stderr)
    return build_form(spec.cell.model, spec.cell.form, spec.seed)


def fits(spec: CellSpec) -> None:
    """Build (or load the parent's build), prepare and call the cell's model twice; raises what the
    device raises."""
    from bench.measure.precision_switches import apply_precision_settings

    if spec.num_threads:
        torch.set_num_threads(spec.num_threads)
    device = torch.device("cuda:0" if spec.device == "cuda" else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("the probe asks for CUDA but torch.cuda.is_available() is False")
    faults.trigger(list(spec.faults), "start")
    apply_precision_settings(spec.cell.precision)
    casts = runtimes.get(spec.cell.runtime).harness_casts
    model = workload.prepare_model(load_form(spec), spec.cell, device, casts)
    faults.trigger(list(spec.faults), "workload", device)
    x = workload.make_input(spec.cell, device, seed=spec.seed, harness_casts=casts)
    fn = workload.make_fn(model, x, spec.cell, device)
    fn()
    fn()
    workload.synchronize(device)


def main(argv: Optional[list[str]] = None) -> int:
    spec_path, out_path = (argv if argv is not None else sys.argv[1:])[:2]
    watch_parent()
    spec = CellSpec.from_json(Path(spec_path).read_text())
    try:
        fits(spec)
        outcome = CellOutcome(status="ok")
    except MODEL_CODE_FAILURES as exc:  # every failure is data, a model's sys.exit() too
        traceback.print_exc()
        outcome = CellOutcome(status=classify(exc), error=describe(exc))
    write_atomic(Path(out_path), outcome.to_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
