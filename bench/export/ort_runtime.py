"""ONNX Runtime as a runtime: a module exported to ONNX, run by an InferenceSession as a zero-arg callable.

Not wired into the sweep yet. What a cell needs: `skip_reason(device)` before building (the extra or the
provider missing), then `ort_callable(model, x, device, num_threads)` for the timed callable and an
`OrtRecord` of what to put in the row. The gate compares its output with the PyTorch module's
(`bench.export.onnx_check.check_onnx` does the same against a file).

Timing regime: ONNX Runtime's `run` returns when its outputs are ready (on CUDA it synchronizes its own
stream, which torch's CUDA events do not see), so cells must time it with the "cpu" regime on the CPU and
"synchronized" on CUDA, never "pipelined" or "cudagraph". Threads: `intra_op_num_threads` is set to the
cell's torch thread count and `inter_op_num_threads` to 1 (sequential execution), as torch cells run.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from bench.export import onnx_check

PROVIDERS: dict[str, str] = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
REGIMES: dict[str, str] = {"cpu": "cpu", "cuda": "synchronized"}
_LEVELS: dict[str, Callable] = {
    "disable": lambda ort: ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": lambda ort: ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": lambda ort: ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": lambda ort: ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
GRAPH_LEVELS: tuple[str, ...] = tuple(_LEVELS)


@dataclass(frozen=True)
class OrtRecord:
    """What an onnxruntime cell's row records beside the timing."""

    provider: str
    ort_version: str
    graph_optimization_level: str
    intra_op_threads: int
    inter_op_threads: int
    regime: str


def skip_reason(device: torch.device) -> Optional[str]:
    """Why an onnxruntime cell cannot run on `device`, or None."""
    missing = [name for name in onnx_check.ONNX_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        return (f"onnxruntime runtime needs {', '.join(missing)}: install the '{onnx_check.ONNX_EXTRA}' extra "
                f"(pip install -e \".[{onnx_check.ONNX_EXTRA}]\")")
    if device.type not in PROVIDERS:
        return f"onnxruntime runtime has no provider for device type '{device.type}'; valid: {', '.join(PROVIDERS)}"
    import onnxruntime as ort

    provider = PROVIDERS[device.type]
    if provider not in ort.get_available_providers():
        return (f"{provider} is not available in this onnxruntime build "
                f"(available: {', '.join(ort.get_available_providers())}; onnxruntime-gpu provides CUDA)")
    return None


def _session(data: bytes, provider: str, device: torch.device, num_threads: int, level: str):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = _LEVELS[level](ort)
    options.intra_op_num_threads = num_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    provider_options = [{"device_id": device.index or 0}] if device.type == "cuda" else [{}]
    return ort.InferenceSession(data, sess_options=options, providers=[provider], provider_options=provider_options)


def ort_callable(model: nn.Module, x: torch.Tensor, device: torch.device, num_threads: int,
                 level: str = "all") -> tuple[Callable[[], object], OrtRecord]:
    """Export `model` (eval mode) on `x`, open a session on `device`, return (timed callable, record).

    The input is bound once (on CUDA through IO binding to `x`'s memory, so no copy is timed); the
    callable runs the graph once per call.
    """
    reason = skip_reason(device)
    if reason:
        raise RuntimeError(reason)
    if level not in GRAPH_LEVELS:
        raise ValueError(f"graph optimisation level '{level}' is unknown; valid: {', '.join(GRAPH_LEVELS)}")
    import numpy as np
    import onnxruntime as ort

    graph = onnx_check.export_onnx(model, x.cpu() if device.type == "cpu" else x)
    provider = PROVIDERS[device.type]
    session = _session(graph.data, provider, device, num_threads, level)
    input_name, output_name = session.get_inputs()[0].name, session.get_outputs()[0].name
    if device.type == "cpu":
        feed = {input_name: x.detach().contiguous().numpy()}
        call = lambda: session.run([output_name], feed)[0]  # noqa: E731
    else:
        x = x.detach().contiguous()
        binding = session.io_binding()
        binding.bind_input(input_name, "cuda", device.index or 0, np.dtype(str(x.dtype).removeprefix("torch.")),
                           tuple(x.shape), x.data_ptr())
        binding.bind_output(output_name, "cuda", device.index or 0)
        call = lambda: session.run_with_iobinding(binding)  # noqa: E731
    record = OrtRecord(provider, ort.__version__, level, num_threads, 1, REGIMES[device.type])
    return call, record
