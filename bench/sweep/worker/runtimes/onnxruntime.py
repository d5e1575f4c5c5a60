"""`onnxruntime` (the CPU provider on the CPU, the CUDA provider on CUDA) and `onnxruntime_trt` (the
TensorRT provider): each form exported to ONNX and opened as a session by `bench.sweep.worker.ort_unit`.

Both refuse a session that does not run on the provider asked for (`ort_runtime.ProviderFallback`), bind
the input and output on the device on CUDA (no host copy is timed), and are timed 'synchronized' on CUDA
(the session runs on a stream of its own). Their arenas are invisible to torch's allocator counters, so
their rows carry NVML's process memory only (`torch_memory = False`). TensorRT keeps TF32 on for fp32
layers and ONNX Runtime has no option to turn it off, so `onnxruntime_trt` is timed in tf32 and fp16,
never under an fp32 label. `onnxruntime` also runs int8, on the CPU: each form's fp32 export quantized
(`bench.quant.ort`), its int8 session timed and its fp32 session gated (`Opened.int8`).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Optional

import torch
from torch import nn

from bench.results.precision import BY_NAME, TORCH_PRECISIONS
from bench.sweep.worker.runtimes.base import Opened, Runtime, RuntimeRecord, cpu_output, register

if TYPE_CHECKING:
    from bench.results.cell import Cell

CONV_OPS: tuple[str, ...] = ("Conv", "FusedConv", "NhwcConv", "NchwcConv", "QLinearConv", "ConvInteger")
"""Convolution node types in a graph ONNX Runtime optimized (its CPU fusions rename Conv)."""
ORT_PRECISIONS: tuple[str, ...] = tuple(p for p in TORCH_PRECISIONS if BY_NAME[p].numpy)
"""fp32, tf32, fp16: the float precisions whose dtype numpy has, so a session can take their tensors."""


@functools.lru_cache(maxsize=None)
def _unavailable(device_type: str, provider: Optional[str]) -> Optional[str]:
    from bench.export.ort_runtime import skip_reason

    return skip_reason(device_type, provider)


class _Ort(Runtime):
    provider: Optional[str] = None
    precisions = ORT_PRECISIONS
    memory_formats = ("contiguous",)
    why_formats = "it runs the exported NCHW graph; ONNX Runtime picks its own layouts"
    why_precisions = "bf16 has no numpy dtype for ONNX Runtime's inputs"
    torch_memory = False
    regimes = {"cpu": "cpu", "cuda": "synchronized"}

    def unavailable(self, device_type: str) -> Optional[str]:
        return _unavailable(device_type, self.provider)

    def open(self, module: nn.Module, x: torch.Tensor, cell: Cell, device: torch.device,
             share: bool = True, seed: int = 0) -> Opened:
        from bench.sweep.worker import ort_unit

        int8 = gated = None
        if cell.precision == "int8":  # the fp32 export quantized: int8 timed, its fp32 graph gated
            int8 = ort_unit.open_int8(module, x, device, seed)
            session, gated = int8.int8, int8.fp32
        else:
            session = gated = ort_unit.open_session(module, x, cell, device, provider=self.provider)
        rec = session.record
        counts = rec.op_counts
        settings = (("provider", rec.provider), ("graph_optimization_level", rec.graph_optimization_level),
                    ("intra_op_threads", rec.intra_op_threads), ("inter_op_threads", rec.inter_op_threads),
                    *rec.provider_options)
        record = RuntimeRecord(
            version=f"onnxruntime {rec.ort_version}", settings=settings, build_ms=rec.build_ms,
            convs=sum(counts.get(op, 0) for op in CONV_OPS) if counts is not None else None,
            batchnorms=counts.get("BatchNormalization", 0) if counts is not None else None,
            columns=tuple(ort_unit.record_fields(rec).items()))
        return Opened(call=session.call, output=lambda: cpu_output(gated.output()), record=record,
                      keep=(session, gated, x), int8=int8.form if int8 is not None else None)


INT8_DEVICES: tuple[str, ...] = ("cpu",)
"""Where ONNX Runtime runs a QDQ graph with int8 kernels: its CPU provider. The CUDA provider runs QDQ
graphs by dequantizing around float convolutions, so a row there would time no int8 math."""


@register
class OnnxRuntime(_Ort):
    name = "onnxruntime"
    summary = "ONNX Runtime: the exported graph, CPU provider on the CPU, CUDA provider on CUDA"
    precisions = (*ORT_PRECISIONS, "int8")

    def combination_problem(self, cell: Cell, device_type: str) -> Optional[str]:
        problem = super().combination_problem(cell, device_type)
        if problem is None and cell.precision == "int8" and device_type not in INT8_DEVICES:
            return (f"int8 through onnxruntime is timed on {', '.join(INT8_DEVICES)} only: its {device_type} "
                    "provider has no int8 convolutions for QDQ graphs (int8 on CUDA needs TensorRT's int8 "
                    "builds, which the tensorrt and onnxruntime_trt runtimes do not make yet)")
        return problem


@register
class OnnxRuntimeTrt(_Ort):
    name = "onnxruntime_trt"
    summary = "ONNX Runtime's TensorRT provider (CUDA provider behind it), engine built at session creation"
    provider = "TensorrtExecutionProvider"
    devices = ("cuda",)
    precisions = tuple(p for p in ORT_PRECISIONS if BY_NAME[p].tf32 or BY_NAME[p].reduced)
    why_precisions = "TensorRT keeps TF32 on for fp32 layers and ONNX Runtime has no option to turn it off"
    why_no_int8 = "builds float TensorRT engines; its int8 calibration is not driven here"
