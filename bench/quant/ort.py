"""One form as ONNX Runtime runs it in int8: exported once, its fp32 session opened (the graph the gate
checks and the reference of its own int8 error), the same bytes quantized (`onnx_static.quantize_onnx`,
calibration set for the input's shape drawn from `seed`), and the int8 session opened with the same
session options (`bench.export.ort_runtime.open_graph`): the one a sweep times.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bench.export.ort_runtime import OrtSession, open_graph
from bench.quant.evaluate import Int8Form


@dataclass(frozen=True)
class OrtInt8:
    """The fp32 session (gated), the int8 session (timed), and both as an `Int8Form`."""

    fp32: OrtSession
    int8: OrtSession
    form: Int8Form


def open_int8(module: nn.Module, x: torch.Tensor, device: torch.device, num_threads: int, seed: int,
              level: str = "all", per_channel: bool = True) -> OrtInt8:
    """Export `module` (fp32, eval mode, on `device`) on `x` once and open both sessions, `x` bound. Each
    session's build time counts the export; the int8 one's also the quantization."""
    import time

    from bench.export.onnx_check import export_onnx
    from bench.quant.calibration import calibration_set
    from bench.quant.onnx_static import quantize_onnx

    start = time.perf_counter()
    graph = export_onnx(module, x.cpu() if device.type == "cpu" else x)
    export_s = time.perf_counter() - start
    fp32 = open_graph(graph.data, x, device, num_threads, level=level, started=start)
    quantizing = time.perf_counter()
    calibration = calibration_set(tuple(x.shape), seed)
    quantized = quantize_onnx(graph.data, calibration.batches(), calibration.seed, per_channel=per_channel)
    int8 = open_graph(quantized.data, x, device, num_threads, level=level, started=quantizing - export_s)
    return OrtInt8(fp32, int8, Int8Form(fp32.call, int8.call, fp32.run_on, int8.run_on, quantized.scheme))
