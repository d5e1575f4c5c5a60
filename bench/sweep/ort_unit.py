"""The `onnxruntime` runtime inside a unit: each form exported to ONNX, opened as an ONNX Runtime session
on the unit's device, and gated against PyTorch before anything is timed.

The gate of an onnxruntime unit compares every session's output with the PyTorch training form's on the
same input, under the gate's tolerances (`bench.models.agreement.TOLERANCES`): the training-form session checks
the export, the deploy-form session the conversion and the export together (its row also gets the fold
check). A session that fails makes its row `mismatch`, so its pair gets no speedup.

Each session is exported at the unit's batch size on the timing input itself (shapes are static), so the
gate reads the first `GATE_MAX_BATCH` samples of the session's output against a PyTorch forward of those
samples only: eval-mode networks treat samples independently. Threads: `intra_op_num_threads` is the
unit's torch thread count (`torch.get_num_threads()` after `--threads` is applied), as for torch cells.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional

import torch
from torch import nn

from bench.export.ort_runtime import OrtRecord, OrtSession, ort_session
from bench.models.gate import GateResult, compare_outputs
from bench.sweep.cells import Cell

GRAPH_LEVEL = "all"
"""ONNX Runtime's default graph optimisation level: what a deployment gets without asking for less."""


def open_session(module: nn.Module, x: torch.Tensor, cell: Cell, device: torch.device,
                 provider: Optional[str] = None) -> OrtSession:
    """Export `module` (prepared: device, dtype, eval mode) on `x` and open its session (`provider`:
    default the device's)."""
    return ort_session(module, x, device, num_threads=torch.get_num_threads(), level=GRAPH_LEVEL,
                       tf32=cell.precision == "tf32", provider=provider, fp16=cell.precision == "fp16")


def record_fields(record: OrtRecord) -> dict[str, Any]:
    """The row's onnxruntime columns."""
    return {"ort_provider": record.provider, "ort_version": record.ort_version,
            "ort_graph_optimization_level": record.graph_optimization_level,
            "ort_intra_op_threads": record.intra_op_threads}


def gate(reference: torch.Tensor, session: OrtSession, n: int, precision: str, form: str) -> GateResult:
    """The session's output on its first `n` samples against PyTorch's `reference` (those `n` samples)."""
    return replace(compare_outputs(reference.detach().cpu(), session.output()[:n], precision),
                   compared=f"ONNX Runtime output of the {form} form", reference="the PyTorch training form")
