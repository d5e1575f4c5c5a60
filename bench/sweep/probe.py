"""One `--max-batch` probe, inside its own process: `python -m bench.sweep.probe SPEC.json OUTCOME.json`.

Does one batch fit? The cell's form is built as a sweep builds it (`bench.models.build_form`), prepared
(device, dtype, memory format) and called twice, so optimizer state and autotuner workspaces are
allocated too. Nothing is timed. Any exception becomes the outcome's status ('oom' or 'error') and text.
A fresh process per probe leaves no fragmented allocator behind to shrink the next one.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Optional

import torch

from bench.models.user import MODEL_CODE_FAILURES
from bench.sweep import faults, workload
from bench.sweep.failures import classify, describe
from bench.sweep.orphans import watch_parent
from bench.sweep.protocol import CellOutcome, CellSpec, write_atomic


def fits(spec: CellSpec) -> None:
    """Build, prepare and call the cell's model twice; raises what the device raises."""
    from bench.measure.repro import apply_precision_settings
    from bench.models.build import build_form

    if spec.num_threads:
        torch.set_num_threads(spec.num_threads)
    device = torch.device("cuda:0" if spec.device == "cuda" else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("the probe asks for CUDA but torch.cuda.is_available() is False")
    faults.trigger(list(spec.faults), "start")
    apply_precision_settings(spec.cell.precision)
    model = workload.prepare_model(build_form(spec.cell.model, spec.cell.form, spec.seed), spec.cell, device)
    faults.trigger(list(spec.faults), "workload", device)
    fn = workload.make_fn(model, workload.make_input(spec.cell, device, seed=spec.seed), spec.cell, device)
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
