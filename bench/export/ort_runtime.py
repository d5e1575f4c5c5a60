"""ONNX Runtime as a runtime: a module exported to ONNX, run by an InferenceSession as a zero-arg callable.

The sweep's `onnxruntime` runtime (`bench.sweep.worker.ort_unit`) uses it: `skip_reason(device_type)` when the
sweep is planned (the extra or the provider missing), then `ort_session(model, x, device, num_threads)`
for the timed callable, its output (for the gate) and an `OrtRecord` of what goes in the row.
`open_graph(data, x, ...)` opens a graph already serialized (an int8 cell's quantized export) the same way.
`bench.export.onnx_check.check_onnx` does the same comparison against a file.

Timing regime: ONNX Runtime's `run` returns when its outputs are ready (on CUDA it synchronizes its own
stream, which torch's CUDA events do not see), so cells must time it with the "cpu" regime on the CPU and
"synchronized" on CUDA, never "pipelined" or "cudagraph". Threads: `intra_op_num_threads` is set to the
cell's torch thread count and `inter_op_num_threads` to 1 (sequential execution), as torch cells run.
TF32: the CUDA provider's `use_tf32` follows the cell's precision (on for tf32 only), as torch's switches do.

Providers: the one asked for must be the one running. ONNX Runtime only warns when a provider it was given
is not in its build and runs the session on the CPU instead; `open_checked` refuses such a session
(`ProviderFallback`) instead of timing a CPU session under a CUDA label. `TRT_PROVIDER` (the TensorRT
execution provider) gets the CUDA provider behind it for the nodes TensorRT does not take, as ONNX
Runtime's documentation sets it up; its engine is built when the session is created, fp16 by its
`trt_fp16_enable` flag, and it keeps TF32 on for fp32 layers (no provider option turns it off).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import nn

from bench.export import onnx_check
from bench.usage import unknown

PROVIDERS: dict[str, str] = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
TRT_PROVIDER = "TensorrtExecutionProvider"
TRT_AUXILIARY_STREAMS = -1
"""TensorRT's own heuristic for auxiliary streams (its default): branches may run concurrently."""
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
    provider_options: tuple[tuple[str, object], ...] = ()
    build_ms: Optional[float] = None
    """Export and session creation (for the TensorRT provider: its engine build)."""
    op_counts: Optional[dict[str, int]] = None
    """Node types of the graph as ONNX Runtime optimized it (None where the provider hides it: TensorRT)."""


class ProviderFallback(RuntimeError):
    """The session does not run on the execution provider it was asked for."""


def skip_reason(device: torch.device | str, provider: Optional[str] = None) -> Optional[str]:
    """Why an onnxruntime cell cannot run on `device` (a device or its type) with `provider` (default:
    the device's, `PROVIDERS`), or None; onnxruntime is imported only when it is installed."""
    device_type = device if isinstance(device, str) else device.type
    missing = [name for name in onnx_check.ONNX_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        return (f"onnxruntime runtime needs {', '.join(missing)}: install the '{onnx_check.ONNX_EXTRA}' extra "
                f"(pip install -e \".[{onnx_check.ONNX_EXTRA}]\")")
    if device_type not in PROVIDERS:
        return f"onnxruntime runtime has no provider for device type '{device_type}'; valid: {', '.join(PROVIDERS)}"
    import onnxruntime as ort

    provider = provider or PROVIDERS[device_type]
    if provider not in ort.get_available_providers():
        return (f"{provider} is not available in this onnxruntime build "
                f"(available: {', '.join(ort.get_available_providers())}; onnxruntime-gpu provides CUDA and, "
                "with TensorRT installed, TensorRT)")
    return None


def provider_chain(provider: str, device: torch.device, tf32: bool,
                   fp16: bool = False) -> list[tuple[str, dict[str, object]]]:
    """The (provider, options) list a session is opened with: the TensorRT provider has the CUDA one behind
    it for the nodes TensorRT does not take; never the CPU provider behind a GPU one."""
    index = device.index or 0
    cuda = (PROVIDERS["cuda"], {"device_id": index, "use_tf32": int(tf32)})
    if provider == TRT_PROVIDER:
        return [(TRT_PROVIDER, {"device_id": index, "trt_fp16_enable": int(fp16), "trt_engine_cache_enable": 0,
                                "trt_auxiliary_streams": TRT_AUXILIARY_STREAMS}), cuda]
    if provider == PROVIDERS["cuda"]:
        return [cuda]
    return [(provider, {})]


def check_provider(session: Any, provider: str) -> None:
    """Refuse a session whose first provider is not `provider` (ONNX Runtime's silent CPU fallback)."""
    running = list(session.get_providers())
    if not running or running[0] != provider:
        raise ProviderFallback(f"asked ONNX Runtime for {provider} but the session runs on "
                               f"{', '.join(running) or 'nothing'}: refusing to time it under the wrong label "
                               f"(available here: {', '.join(_available())})")


def _available() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def open_checked(data: bytes, chain: list[tuple[str, dict[str, object]]], num_threads: int, level: str,
                 optimized_path: Optional[str] = None):
    """An InferenceSession on `chain`, refused unless its first provider is the one asked for; with
    `optimized_path`, ONNX Runtime writes the graph it optimized there."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = _LEVELS[level](ort)
    options.intra_op_num_threads = num_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if optimized_path:
        options.optimized_model_filepath = optimized_path
    session = ort.InferenceSession(data, sess_options=options, providers=[name for name, _ in chain],
                                   provider_options=[dict(opts) for _, opts in chain])
    check_provider(session, chain[0][0])
    return session


def _optimized_op_counts(path: str) -> Optional[dict[str, int]]:
    import collections

    import onnx

    try:
        proto = onnx.load(path)
    except OSError:
        return None
    return dict(collections.Counter(node.op_type for node in proto.graph.node))


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


def _check(device: torch.device, level: str, provider: Optional[str]) -> str:
    """The provider a session on `device` runs on (`provider` or the device's), refused with the reason
    where it cannot run here; checked before an export, which takes seconds."""
    reason = skip_reason(device, provider)
    if reason:
        raise RuntimeError(reason)
    if level not in GRAPH_LEVELS:
        raise unknown("graph optimisation level", level, GRAPH_LEVELS)
    provider = provider or PROVIDERS[device.type]
    if provider != PROVIDERS["cpu"] and device.type != "cuda":
        raise ValueError(f"{provider} runs on CUDA devices only, not {device}")
    return provider


def ort_session(model: nn.Module, x: torch.Tensor, device: torch.device, num_threads: int,
                level: str = "all", tf32: bool = False, provider: Optional[str] = None,
                fp16: bool = False) -> OrtSession:
    """Export `model` (eval mode) on `x`, open a session on `device` with the input bound (`open_graph`);
    the record's build time counts the export too."""
    import time

    _check(device, level, provider)
    start = time.perf_counter()
    graph = onnx_check.export_onnx(model, x.cpu() if device.type == "cpu" else x)
    return open_graph(graph.data, x, device, num_threads, level, tf32, provider, fp16, started=start)


def open_graph(data: bytes, x: torch.Tensor, device: torch.device, num_threads: int, level: str = "all",
               tf32: bool = False, provider: Optional[str] = None, fp16: bool = False,
               started: Optional[float] = None) -> OrtSession:
    """Open the serialized graph `data` (one input, `x`'s shape and dtype) on `device` with `x` bound.

    `provider`: default the device's (`PROVIDERS`); `TRT_PROVIDER` for TensorRT (CUDA only; `fp16` sets
    its fp16 flag). The input is bound once (on CUDA through IO binding to `x`'s memory and the output
    bound on the device, so no host copy is timed); the callable runs the graph once per call. `x` must
    stay alive as long as the session is used. The graph ONNX Runtime optimized is read back (CPU
    provider only: a GPU provider's graph may hold compiled nodes that cannot be saved). `started`: the
    `time.perf_counter()` the build time counts from (default: now).
    """
    import tempfile
    import time

    provider = _check(device, level, provider)
    import numpy as np
    import onnxruntime as ort

    start = time.perf_counter() if started is None else started
    chain = provider_chain(provider, device, tf32, fp16)
    with tempfile.TemporaryDirectory() as folder:
        optimized = f"{folder}/optimized.onnx" if provider == PROVIDERS["cpu"] else None
        session = open_checked(data, chain, num_threads, level, optimized)
        build_ms = (time.perf_counter() - start) * 1000.0
        op_counts = _optimized_op_counts(optimized) if optimized else None
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
    record = OrtRecord(provider, ort.__version__, level, num_threads, 1, REGIMES[device.type],
                       provider_options=tuple(chain[0][1].items()), build_ms=build_ms, op_counts=op_counts)
    run_on = lambda array: session.run([output_name], {input_name: array})[0]  # noqa: E731
    return OrtSession(call, fetch, record, run_on)


def ort_callable(model: nn.Module, x: torch.Tensor, device: torch.device, num_threads: int,
                 level: str = "all") -> tuple[Callable[[], object], OrtRecord]:
    """`ort_session`'s (timed callable, record)."""
    opened = ort_session(model, x, device, num_threads, level)
    return opened.call, opened.record
