"""The ONNX Runtime sessions of the `onnxruntime` and `onnxruntime_trt` runtimes inside a unit: each form
exported to ONNX at the unit's batch size on the timing input itself (shapes are static) and opened as a
session on the unit's device (`bench.sweep.worker.runtimes.onnxruntime` registers the runtimes).

The unit gates every session like every opened runtime (`bench.sweep.worker.unit`): the first `GATE_MAX_BATCH`
samples of its output against a PyTorch forward of those samples only (eval-mode networks treat samples
independently), so the training-form session checks the export and the deploy-form session the
conversion and the export together. Threads: `intra_op_num_threads` is the unit's torch thread count
(`torch.get_num_threads()` after `--threads` is applied), as for torch cells.

int8 (`open_int8`, `bench.quant.ort`): each form is exported once; its fp32 session is the one gated
(fp32 tolerance, `bench.models.agreement.GATED_IN`), and the same bytes quantized on the seeded
calibration set for the cell's input shape give the int8 session that is timed. Both sessions get the
same options; `bench.sweep.worker.int8` measures the int8 error and times int8 against fp32.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import torch
from torch import nn

from bench.export.ort_runtime import OrtRecord, OrtSession, ort_session
from bench.results.cell import Cell
from bench.results.precision import precision

if TYPE_CHECKING:
    from bench.quant.ort import OrtInt8

GRAPH_LEVEL = "all"
"""ONNX Runtime's default graph optimisation level: what a deployment gets without asking for less."""


def open_session(module: nn.Module, x: torch.Tensor, cell: Cell, device: torch.device,
                 provider: Optional[str] = None) -> OrtSession:
    """Export `module` (prepared: device, dtype, eval mode) on `x` and open its session (`provider`:
    default the device's)."""
    record = precision(cell.precision)
    return ort_session(module, x, device, num_threads=torch.get_num_threads(), level=GRAPH_LEVEL,
                       tf32=record.tf32, provider=provider, fp16=record.dtype == "float16")


def open_int8(module: nn.Module, x: torch.Tensor, device: torch.device, seed: int) -> OrtInt8:
    """`bench.quant.ort.open_int8` with the unit's threads and graph level: an `OrtInt8`."""
    from bench.quant.ort import open_int8 as open_ort_int8

    return open_ort_int8(module, x, device, torch.get_num_threads(), seed, level=GRAPH_LEVEL)


def record_fields(record: OrtRecord) -> dict[str, Any]:
    """The row's onnxruntime columns."""
    return {"ort_provider": record.provider, "ort_version": record.ort_version,
            "ort_graph_optimization_level": record.graph_optimization_level,
            "ort_intra_op_threads": record.intra_op_threads}
