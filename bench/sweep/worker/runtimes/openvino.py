"""`openvino`: the form converted by OpenVINO (`openvino.convert_model` on the PyTorch module, traced on the
timing input) and compiled for its CPU device, one infer request with the input bound once.

Settings pinned so the numbers mean what the row says: `INFERENCE_PRECISION_HINT` f32 (on CPUs with AMX
or AVX512-BF16, OpenVINO's default runs fp32 models in bf16: fp32 must mean fp32), `PERFORMANCE_HINT`
LATENCY with one stream, `INFERENCE_NUM_THREADS` the cell's torch thread count, and no core pinning (as
torch cells run). The compiled model's own properties are read back into `runtime_settings`. The graph it
executes (`get_runtime_model`) gives `runtime_convs`; BatchNorms do not survive conversion as such (those
after a convolution are folded, the rest become Multiply/Add), so `runtime_batchnorms` is None.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any, Optional

import torch
from torch import nn

from bench.sweep.worker.runtimes.base import Opened, Runtime, RuntimeRecord, cpu_output, module_spec_missing, register

if TYPE_CHECKING:
    import openvino as ov
    from bench.results.cell import Cell

EXTRA = "openvino"
DEVICE = "CPU"
PRECISION_HINTS: dict[str, str] = {"fp32": "f32"}
READ_BACK: tuple[str, ...] = ("INFERENCE_PRECISION_HINT", "PERFORMANCE_HINT", "NUM_STREAMS",
                              "INFERENCE_NUM_THREADS", "ENABLE_CPU_PINNING", "EXECUTION_MODE_HINT")


@functools.lru_cache(maxsize=None)
def _missing() -> Optional[str]:
    if module_spec_missing("openvino"):
        return f"openvino runtime needs the openvino package: install the '{EXTRA}' extra (pip install -e \".[{EXTRA}]\")"
    return None


def _text(value: Any) -> str:
    """A property as OpenVINO spells it ("f32" for an element type, not its repr)."""
    return value.get_type_name() if hasattr(value, "get_type_name") else str(value)


def _layer_types(compiled: ov.CompiledModel) -> list[str]:
    return [op.get_rt_info()["layerType"].astype(str) for op in compiled.get_runtime_model().get_ordered_ops()]


@register
class OpenVino(Runtime):
    name = "openvino"
    summary = "OpenVINO: convert_model on the module, compiled for its CPU device (latency hint, fp32 pinned)"
    devices = ("cpu",)
    precisions = tuple(PRECISION_HINTS)
    memory_formats = ("contiguous",)
    why_formats = "OpenVINO picks its own layouts"
    why_no_int8 = "quantizes through NNCF in `bench quant --quantizer openvino`, not in a sweep yet"
    torch_memory = False

    def unavailable(self, device_type: str) -> Optional[str]:
        return _missing()

    def open(self, module: nn.Module, x: torch.Tensor, cell: Cell, device: torch.device,
             share: bool = True, seed: int = 0) -> Opened:
        import openvino as ov

        start = time.perf_counter()
        x = x.detach().cpu().contiguous()
        converted = ov.convert_model(module, example_input=x)
        config = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                  "INFERENCE_PRECISION_HINT": PRECISION_HINTS[cell.precision],
                  "INFERENCE_NUM_THREADS": torch.get_num_threads(), "ENABLE_CPU_PINNING": False}
        compiled = ov.Core().compile_model(converted, DEVICE, config)
        request = compiled.create_infer_request()
        array = x.numpy()
        request.set_input_tensor(ov.Tensor(array, shared_memory=True))
        build_ms = (time.perf_counter() - start) * 1000.0
        settings = (("device", DEVICE), *((key, _text(compiled.get_property(key))) for key in READ_BACK))
        layers = _layer_types(compiled)
        record = RuntimeRecord(version=f"openvino {ov.get_version()}", settings=settings, build_ms=build_ms,
                               convs=sum(t == "Convolution" for t in layers), batchnorms=None)

        def call() -> None:
            request.infer()

        def output() -> torch.Tensor:
            request.infer()
            return cpu_output(request.get_output_tensor(0).data.copy())

        return Opened(call=call, output=output, record=record, keep=(compiled, request, array))
