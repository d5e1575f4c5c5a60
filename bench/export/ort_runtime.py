"""ONNX Runtime as a runtime: a module exported to ONNX, run by an InferenceSession as a zero-arg callable.

The sweep's `onnxruntime` runtime (`bench.sweep.ort_unit`) uses it: `skip_reason(device_type)` when the
sweep is planned (the extra or the provider missing), then `ort_session(model, x, device, num_threads)`
for the timed callable, its output (for the gate) and an `OrtRecord` of what goes in the row.
`open_graph(data, x, ...)` opens a graph already serialized (an int8 cell's quantized export) the same way.
`bench.export.onnx_check.check_onnx` does the same comparison against a file.

Timing regime: ONNX Runtime's `run` returns when its outputs are ready (on CUDA it synchronizes its own
stream, which torch's CUDA events do not see), so cells must time it with the "cpu" regime on the CPU and
"synchronized" on CUDA, never "pipelined" or "cudagraph". Threads: `intra_op_num_threads` is set to the
cell's torch thread count and `inter_op_num_threads` to 1 (sequential execution), as torch cells run.
TF32: the CUDA provider's `use_tf32` follows the cell's precision (on for tf32 only), as torch's switches do.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any, Callable, Optional

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


def skip_reason(device: torch.device | str) -> Optional[str]:
    """Why an onnxruntime cell cannot run on `device` (a device or its type), or None; onnxruntime is
    imported only when it is installed."""
    device_type = device if isinstance(device, str) else device.type
    missing = [name for name in onnx_check.ONNX_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        return (f"onnxruntime runtime needs {', '.join(missing)}: install the '{onnx_check.ONNX_EXTRA}' extra "
                f"(pip install -e \".[{onnx_check.ONNX_EXTRA}]\")")
    if device_type not in PROVIDERS:
        return f"onnxruntime runtime has no provider for device type '{device_type}'; valid: {', '.join(PROVIDERS)}"
    import onnxruntime as ort

    provider = PROVIDERS[device_type]
    if provider not in ort.get_available_providers():
        return (f"{provider} is not available in this onnxruntime build "
                f"(available: {', '.join(ort.get_available_providers())}; onnxruntime-gpu provides CUDA)")
    return None


def _session(data: bytes, provider: str, device: torch.device, num_threads: int, level: str, tf32: bool):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = _LEVELS[level](ort)
    options.intra_op_num_threads = num_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    provider_options = ([{"device_id": device.index or 0, "use_tf32": int(tf32)}] if device.type == "cuda"
                        else [{}])
    return ort.InferenceSession(data, sess_options=options, providers=[provider], provider_options=provider_options)


@dataclass(frozen=True)
class OrtSession:
    """An open session with its input bound: `call()` runs the graph once (the timed callable),
    `output()` runs it and returns the output as a CPU tensor (for the gate), `run_on(array)` runs it on
    another input of the same shape (a float32 numpy array; copied to the device, never timed)."""

    call: Callable[[], object]
    fetch: Callable[[], Any]
    record: OrtRecord
    run_on: Callable[[Any], Any]

    def output(self) -> torch.Tensor:
        self.call()
        return torch.from_numpy(self.fetch())


def _check(device: torch.device, level: str) -> None:
    reason = skip_reason(device)
    if reason:
        raise RuntimeError(reason)
    if level not in GRAPH_LEVELS:
        raise ValueError(f"graph optimisation level '{level}' is unknown; valid: {', '.join(GRAPH_LEVELS)}")


def ort_session(model: nn.Module, x: torch.Tensor, device: torch.device, num_threads: int,
                level: str = "all", tf32: bool = False) -> OrtSession:
    """Export `model` (eval mode) on `x`, open a session on `device` with the input bound.

    The input is bound once (on CUDA through IO binding to `x`'s memory, so no copy is timed); the
    callable runs the graph once per call. `x` must stay alive as long as the session is used. Checked
    before the export, which takes seconds.
    """
    _check(device, level)
    graph = onnx_check.export_onnx(model, x.cpu() if device.type == "cpu" else x)
    return open_graph(graph.data, x, device, num_threads, level, tf32)


def open_graph(data: bytes, x: torch.Tensor, device: torch.device, num_threads: int, level: str = "all",
               tf32: bool = False) -> OrtSession:
    """Open the serialized graph `data` (one input, `x`'s shape and dtype) on `device`, `x` bound as in
    `ort_session`."""
    _check(device, level)
    import numpy as np
    import onnxruntime as ort

    provider = PROVIDERS[device.type]
    session = _session(data, provider, device, num_threads, level, tf32)
    input_name, output_name = session.get_inputs()[0].name, session.get_outputs()[0].name
    if device.type == "cpu":
        feed = {input_name: x.detach().contiguous().numpy()}
        last: list[Any] = [None]

        def call() -> object:
            last[0] = session.run([output_name], feed)[0]
            return last[0]

        fetch = lambda: last[0]  # noqa: E731
    else:
        x = x.detach().contiguous()
        binding = session.io_binding()
        binding.bind_input(input_name, "cuda", device.index or 0, np.dtype(str(x.dtype).removeprefix("torch.")),
                           tuple(x.shape), x.data_ptr())
        binding.bind_output(output_name, "cuda", device.index or 0)
        call = lambda: session.run_with_iobinding(binding)  # noqa: E731
        fetch = lambda: binding.copy_outputs_to_cpu()[0]  # noqa: E731
    record = OrtRecord(provider, ort.__version__, level, num_threads, 1, REGIMES[device.type])
    run_on = lambda array: session.run([output_name], {input_name: array})[0]  # noqa: E731
    return OrtSession(call, fetch, record, run_on)


def ort_callable(model: nn.Module, x: torch.Tensor, device: torch.device, num_threads: int,
                 level: str = "all") -> tuple[Callable[[], object], OrtRecord]:
    """`ort_session`'s (timed callable, record)."""
    opened = ort_session(model, x, device, num_threads, level)
    return opened.call, opened.record
