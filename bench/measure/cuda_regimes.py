"""CUDA timing regimes: "pipelined", "synchronized" and "cudagraph".

- pipelined: one CUDA event pair per call, recorded on the current stream around the call; no host
  synchronisation inside a block of calls, one at its end, then `start.elapsed_time(end)` per call. The
  host keeps the launch queue full, so a sample is the GPU time of one call in steady state (what
  throughput is made of). Events come from a pool created and primed once (torch creates a CUDA event
  lazily at its first record, which would otherwise happen inside the timed loop).
- synchronized: the device is synchronised after every call; a sample is host wall-clock from the call
  to its completion (the latency a caller sees, launch overhead included), and the time until the call
  returns is recorded as host enqueue time.
- cudagraph: after eager warm-up on a side stream (the pattern of the PyTorch CUDA-graphs notes, so lazy
  initialisation and cudnn.benchmark autotuning happen outside the capture), `graph_calls` calls are
  captured into one `torch.cuda.CUDAGraph` (allocations go to the graph's private memory pool; each call's
  freed output is reused by the next inside the capture), then replays are timed like pipelined calls and
  divided by the number of calls captured: launch overhead is gone.

L2 flush (`config.flush_l2`, read with getattr so a config without the field means False): before every
timed call (every replay for cudagraph) a buffer of `l2_flush_bytes` (at least 256 MB, as
`triton.testing.do_bench`, and at least twice the device's L2) is zeroed on the same stream, before the
start event (pipelined, cudagraph) or before the synchronisation that precedes the start clock
(synchronized), so the flush is never inside a sample. Without it small-batch timings are L2-warm (e.g.
RepVGG-A0's deploy weights, 33 MB in fp32, fit in an H100/H200's 50-60 MB L2). With cudagraph only the
first of the `graph_calls` calls in a replay starts cold; use `graph_calls = 1` for every call cold.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, Callable, Optional

import torch

from bench.measure.regimes import Block, Timer, register_regime

if TYPE_CHECKING:
    from bench.measure.timing import TimingConfig


def require_cuda(regime: str, device: torch.device) -> torch.device:
    """The device with an explicit index, or a RuntimeError that says why CUDA timing is impossible."""
    if not torch.cuda.is_available():
        build = torch.version.cuda or "none (a CPU-only build)"
        raise RuntimeError(
            f"timing regime '{regime}' needs a CUDA GPU, but torch.cuda.is_available() is False "
            f"(torch {torch.__version__}, CUDA build: {build}); on this machine use regime 'cpu'")
    if device.type != "cuda":
        raise RuntimeError(f"timing regime '{regime}' times CUDA work but the device is '{device}'; "
                           f"use regime 'cpu' for the CPU or pass a cuda device")
    index = device.index if device.index is not None else torch.cuda.current_device()
    return torch.device("cuda", index)


def side_stream_warmup(fn: Callable[[], Any], device: torch.device, calls: int) -> torch.cuda.Stream:
    """`calls` eager calls on a new side stream (lazy init and cudnn.benchmark autotuning happen there, as
    the PyTorch CUDA-graphs notes ask before a capture); returns that stream, synchronised."""
    current = torch.cuda.current_stream(device)
    side = torch.cuda.Stream(device)
    side.wait_stream(current)
    with torch.cuda.stream(side):
        for _ in range(calls):
            fn()
    current.wait_stream(side)
    torch.cuda.synchronize(device)
    return side


def capture_graph(fn: Callable[[], Any], device: torch.device, stream: torch.cuda.Stream,
                  calls: int) -> torch.cuda.CUDAGraph:
    """`calls` calls of `fn` captured into one graph on `stream` (explicit, so the capture stream is on
    `device`); a callable that cannot be captured is a RuntimeError that says why."""
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph, stream=stream):
            for _ in range(calls):
                fn()
    except RuntimeError as exc:
        raise RuntimeError(
            f"the callable cannot be captured into a CUDA graph ({exc}); graph capture needs static "
            f"shapes, no host synchronisation (.item(), .cpu(), printing tensors) and no new "
            f"allocations outside the graph's pool; use regime 'pipelined' for it") from exc
    torch.cuda.synchronize(device)
    return graph


HOST_BOUND_RATIO = 0.9
"""Eager pipelined cells whose host enqueue median reaches this fraction of the latency are host-bound."""


def host_bound(host_enqueue_ms: Optional[float], latency_ms: Optional[float]) -> Optional[bool]:
    """Whether a pipelined sample measured the host rather than the GPU.

    A pipelined sample is max(host enqueue time, GPU time) per call in steady state: where the CPU needs
    as long to issue a call as the GPU to run it (small batches, small kernels), the queue runs dry and
    the number is the host's. The "cudagraph" regime gives the GPU time then. None where either is
    unknown."""
    if host_enqueue_ms is None or latency_ms is None or latency_ms <= 0:
        return None
    return bool(host_enqueue_ms >= HOST_BOUND_RATIO * latency_ms)


HOST_US_PER_MODULE_MAX = 100.0
"""Most host time, in microseconds, one module call of an eager forward can take to issue its work.

Why this bound: a module's forward issues a few ATen ops (a conv and its bias, a batch norm, an add, an
activation; a container's forward the adds between its children), and an eager op costs its dispatch
plus a kernel launch, about 5-30 us of host time on current server CPUs (PyTorch's own guidance puts the
per-op overhead near 10 us). 100 us per module is several times that."""


def host_bound_possible(latency_ms: Optional[float], modules: int) -> bool:
    """False where a pipelined median is too long for the host to have set it: a forward of `modules`
    module calls issues its work in at most modules x HOST_US_PER_MODULE_MAX, and host-bound needs the
    enqueue time to reach HOST_BOUND_RATIO of the latency. True where it cannot be ruled out (or unknown)."""
    if latency_ms is None or modules <= 0:
        return True
    return modules * HOST_US_PER_MODULE_MAX / 1000.0 >= HOST_BOUND_RATIO * latency_ms


DO_BENCH_FLUSH_BYTES = 256 * 10**6
"""The flush buffer size of triton.testing.do_bench (an int32 buffer of 256e6 // 4 elements)."""


def l2_flush_bytes(l2_bytes: int) -> int:
    """Flush buffer size: do_bench's 256 MB, or twice the L2 where that is larger."""
    return max(DO_BENCH_FLUSH_BYTES, 2 * int(l2_bytes))


class L2Flusher:
    """`flush()` overwrites a buffer larger than the L2, evicting what the previous call left there."""

    def __init__(self, device: torch.device) -> None:
        l2 = int(getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 0) or 0)
        self.buffer = torch.empty(l2_flush_bytes(l2) // 4, dtype=torch.int32, device=device)

    def flush(self) -> None:
        self.buffer.zero_()


def flush_l2_enabled(config: object) -> bool:
    return bool(getattr(config, "flush_l2", False))


class CudaTimer(Timer):
    """Shared by the CUDA regimes: checks CUDA, makes the device current while timing, owns the L2
    flusher where `config.flush_l2` asks for one."""

    def __init__(self, fn: Callable[[], Any], device: torch.device, config: TimingConfig) -> None:
        super().__init__(fn, require_cuda(self.name, device), config)
        self._stack = contextlib.ExitStack()
        self.flusher: Optional[L2Flusher] = L2Flusher(self.device) if flush_l2_enabled(config) else None

    def __enter__(self) -> "CudaTimer":
        self._stack.enter_context(torch.cuda.device(self.device))
        return self

    def close(self) -> None:
        torch.cuda.synchronize(self.device)
        self._stack.close()

    def first_call_ms(self) -> float:
        """Host wall-clock of the first call to its completion (lazy init, autotuning, module loading)."""
        torch.cuda.synchronize(self.device)
        start = time.perf_counter_ns()
        self.fn()
        torch.cuda.synchronize(self.device)
        return (time.perf_counter_ns() - start) / 1e6


class _EventPool:
    """Timing events reused across blocks; new ones are recorded once at creation so they exist."""

    def __init__(self) -> None:
        self.starts: list[torch.cuda.Event] = []
        self.ends: list[torch.cuda.Event] = []

    def pairs(self, n: int, stream: torch.cuda.Stream) -> tuple[list, list]:
        while len(self.starts) < n:
            for events in (self.starts, self.ends):
                event = torch.cuda.Event(enable_timing=True)
                event.record(stream)
                events.append(event)
        return self.starts[:n], self.ends[:n]


@register_regime("pipelined")
class PipelinedTimer(CudaTimer):
    """Events around each call, one synchronisation per block (see the module docstring)."""

    def __init__(self, fn: Callable[[], Any], device: torch.device, config: TimingConfig) -> None:
        super().__init__(fn, device, config)
        self._events = _EventPool()
        self._call: Callable[[], Any] = fn

    def run(self, n: int) -> Block:
        stream = torch.cuda.current_stream(self.device)
        starts, ends = self._events.pairs(n, stream)
        torch.cuda.synchronize(self.device)
        call = self._call
        flush = self.flusher.flush if self.flusher is not None else None
        for start, end in zip(starts, ends):
            if flush is not None:
                flush()  # queued before the start event: outside the sample
            start.record(stream)
            call()
            end.record(stream)
        torch.cuda.synchronize(self.device)
        k = self.calls_per_sample
        return Block([start.elapsed_time(end) / k for start, end in zip(starts, ends)])


@register_regime("synchronized")
class SynchronizedTimer(CudaTimer):
    """Host wall-clock per call with a device synchronisation after each; also host enqueue time."""

    def run(self, n: int) -> Block:
        fn, clock, device = self.fn, time.perf_counter_ns, self.device
        sync = torch.cuda.synchronize
        samples, enqueue = [0.0] * n, [0.0] * n
        flush = self.flusher.flush if self.flusher is not None else None
        sync(device)
        for i in range(n):
            if flush is not None:
                flush()
                sync(device)
            start = clock()
            fn()
            returned = clock()
            sync(device)
            done = clock()
            samples[i] = (done - start) / 1e6
            enqueue[i] = (returned - start) / 1e6
        return Block(samples, enqueue)


@register_regime("cudagraph")
class GraphTimer(PipelinedTimer):
    """Replays of a CUDA graph holding `config.graph_calls` calls, timed like pipelined calls, divided."""

    def __init__(self, fn: Callable[[], Any], device: torch.device, config: TimingConfig) -> None:
        super().__init__(fn, device, config)
        self.calls_per_sample = int(config.graph_calls)
        self._graph: Optional[torch.cuda.CUDAGraph] = None

    def prepare(self) -> int:
        """Eager warm-up on a side stream, then capture; returns the eager calls made."""
        side = side_stream_warmup(self.fn, self.device, int(self.config.graph_eager_warmup))
        self._graph = capture_graph(self.fn, self.device, side, self.calls_per_sample)
        self._call = self._graph.replay
        return int(self.config.graph_eager_warmup)

    def run(self, n: int) -> Block:
        if self._graph is None:
            raise RuntimeError("regime 'cudagraph': prepare() must capture the graph before run()")
        return super().run(n)

    def close(self) -> None:
        torch.cuda.synchronize(self.device)
        self._call = self.fn
        self._graph = None
        super().close()
