"""`tensorrt`: the form exported to ONNX, parsed by TensorRT's ONNX parser and built into an engine for the
cell's GPU; the engine runs on torch's current stream (`execute_async_v3`), input and output bound to
device tensors, so torch's CUDA events time it ('pipelined', as eager cells) and no host copy is timed.

Precision is TensorRT's builder flags on the fp32 network (the harness does not cast the module:
`harness_casts = False`): fp32 clears TF32 (which TensorRT enables by default), tf32 keeps it, fp16 and bf16
set their flag (TensorRT may still keep a layer in fp32 where that is faster or needed). Auxiliary streams
are TensorRT's default (`max_aux_streams` -1: its heuristic may run RepVGG's branches concurrently), and
recorded with the builder optimisation level; the engine build time is `runtime_build_ms`. The engine's
layers are read back with detailed profiling verbosity: `runtime_convs` counts its convolution layers
(a conv with its BN and residual add fused is one), `runtime_batchnorms` is None (TensorRT names no BN).
"""

from __future__ import annotations

import functools
import json
import time
from typing import TYPE_CHECKING, Any, Optional

import torch
from torch import nn

from bench.sweep.worker.runtimes.base import (Opened, Runtime, RuntimeRecord, cpu_output, module_spec_missing,
                                       register)

if TYPE_CHECKING:
    import tensorrt as trt
    from bench.results.cell import Cell

FLAGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "fp32": ((), ("TF32",)), "tf32": (("TF32",), ()), "fp16": (("FP16", "TF32"), ()), "bf16": (("BF16", "TF32"), ()),
}
"""precision -> (builder flags set, builder flags cleared)."""


@functools.lru_cache(maxsize=None)
def _unavailable(device_type: str) -> Optional[str]:
    from bench.export.onnx_check import ONNX_EXTRA

    if module_spec_missing("tensorrt"):
        return "tensorrt runtime needs the tensorrt package (pip install tensorrt, matching the GPU's CUDA)"
    missing = module_spec_missing("onnx", "onnxscript")
    if missing:
        return f"tensorrt runtime exports through ONNX and needs {', '.join(missing)}: install the '{ONNX_EXTRA}' extra"
    return None


def build_engine(data: bytes, precision: str) -> tuple[Any, dict[str, Any]]:
    """Parse the ONNX bytes and build a deserialized engine; returns it with the builder settings used."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(data):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT's ONNX parser refused the exported graph: {errors}")
    config = builder.create_builder_config()
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    set_flags, cleared = FLAGS[precision]
    for name in set_flags:
        flag = getattr(trt.BuilderFlag, name, None)
        if flag is None:
            raise RuntimeError(f"TensorRT {trt.__version__} has no {name} builder flag; {precision} cannot be built")
        config.set_flag(flag)
    for name in cleared:
        config.clear_flag(getattr(trt.BuilderFlag, name))
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("TensorRT could not build an engine for the exported graph (see its log above)")
    engine = trt.Runtime(logger).deserialize_cuda_engine(serialized)
    settings = {"flags": "+".join(set_flags) or "none", "cleared": "+".join(cleared) or "none",
                "max_aux_streams": config.max_aux_streams,
                "builder_optimization_level": getattr(config, "builder_optimization_level", None)}
    return engine, settings


def _conv_layers(engine: trt.ICudaEngine) -> Optional[int]:
    import tensorrt as trt

    info = json.loads(engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON))
    layers = info.get("Layers", [])
    if not layers or not isinstance(layers[0], dict):
        return None
    return sum("Convolution" in str(layer.get("LayerType", "")) for layer in layers)


@register
class TensorRT(Runtime):
    name = "tensorrt"
    summary = "TensorRT: the ONNX export built into an engine, precision as builder flags"
    devices = ("cuda",)
    memory_formats = ("contiguous",)
    why_formats = "TensorRT picks its own layouts"
    why_no_int8 = "builds float engines; its int8 calibration is not driven here"
    harness_casts = False
    torch_memory = False

    def unavailable(self, device_type: str) -> Optional[str]:
        return _unavailable(device_type)

    def open(self, module: nn.Module, x: torch.Tensor, cell: Cell, device: torch.device,
             share: bool = True, seed: int = 0) -> Opened:
        import tensorrt as trt

        from bench.export.onnx_check import export_onnx

        start = time.perf_counter()
        engine, settings = build_engine(export_onnx(module, x).data, cell.precision)
        context = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise RuntimeError(f"the engine has inputs {inputs} and outputs {outputs}; one of each expected")
        if engine.get_tensor_dtype(outputs[0]) != trt.float32:
            raise RuntimeError(f"the engine's output is {engine.get_tensor_dtype(outputs[0])}; the fp32 network's "
                               "output should stay float32 (precision is a builder flag, not an I/O type)")
        x = x.detach().contiguous()
        shape = tuple(context.get_tensor_shape(outputs[0]))
        out = torch.empty(shape, dtype=torch.float32, device=device)
        context.set_tensor_address(inputs[0], x.data_ptr())
        context.set_tensor_address(outputs[0], out.data_ptr())
        build_ms = (time.perf_counter() - start) * 1000.0
        record = RuntimeRecord(version=f"tensorrt {trt.__version__}", settings=tuple(settings.items()),
                               build_ms=build_ms, convs=_conv_layers(engine), batchnorms=None)

        def call() -> None:
            if not context.execute_async_v3(torch.cuda.current_stream(device).cuda_stream):
                raise RuntimeError("TensorRT's execute_async_v3 failed")

        def output() -> torch.Tensor:
            call()
            torch.cuda.synchronize(device)
            return cpu_output(out)

        return Opened(call=call, output=output, record=record, keep=(engine, context, x, out))
