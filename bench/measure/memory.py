"""Memory of one cell, in MiB (2**20 bytes), measured in a pass of its own (never during timing).

CUDA, four definitions, because each answers a different question:
- peak_allocated_mib: `torch.cuda.max_memory_allocated` after `reset_peak_memory_stats`: bytes of live
  tensors at the worst moment (model, input, activations, workspaces), rounded by the caching allocator
  to 512-byte blocks. What the model needs.
- peak_reserved_mib: `torch.cuda.max_memory_reserved`, the caching allocator's segments (the cache is
  emptied before the pass): what PyTorch took from the driver for it.
- nvml_process_mib: what the driver attributes to this process (reserved + CUDA context + libraries);
  None when NVML cannot resolve our PID (containers report host PIDs).
- nvml_device_delta_mib: device-wide used memory minus the baseline taken after the CUDA context was
  created and before the model was built; other processes' allocations land in it too.
- cuda_context_mib: the process's memory before any tensor existed (context, loaded kernels): NVML
  process usage minus torch's reserved bytes, else the device-wide increase caused by creating it.
Regime (`measure_memory(..., regime=)`): "eager" calls `fn`; "cudagraph" warms `fn` up on a side stream,
then resets the peaks and measures around the capture of `graph_calls` calls into a CUDA graph (its private
pool counts in torch's allocated/reserved bytes) and `calls` replays: what a graph-replayed cell holds,
not the eager numbers again. Timing regime names are accepted ("pipelined"/"synchronized"/"cpu" = eager).
cuDNN workspaces are part of every CUDA peak: at small shapes a deploy form's workspace can exceed what
the training form's extra branches cost, so deploy <= train is not an invariant there.
CPU: peak_rss_mib = `resource.getrusage(RUSAGE_SELF).ru_maxrss` (KiB on Linux, bytes on macOS). It is
the peak over the process's lifetime, not over the pass, which is why every cell runs in a fresh process.
"""

from __future__ import annotations

import ctypes
import gc
import os
import resource
import sys
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from bench.measure import nvml_lib
from bench.usage import unknown

MIB = 2**20
OOM_MARKERS: tuple[str, ...] = (
    "out of memory", "can't allocate memory", "cannot allocate memory", "not enough memory",
    "alloc_failed",  # CUBLAS_STATUS_ALLOC_FAILED / CUDNN_STATUS_ALLOC_FAILED: the library's cudaMalloc failed
)


def host_memory_bytes() -> Optional[int]:
    """The machine's physical memory (`SC_PHYS_PAGES` x page size), or None where the OS does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def is_out_of_memory(exc: BaseException) -> bool:
    """torch.OutOfMemoryError, MemoryError, or an allocator's failure message (`OOM_MARKERS`): the CPU
    allocator raises a plain RuntimeError "can't allocate memory", cuBLAS/cuDNN name their own status."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return any(marker in text for marker in OOM_MARKERS)


def to_mib(n_bytes: Optional[float]) -> Optional[float]:
    return None if n_bytes is None else n_bytes / MIB


def peak_rss_mib() -> float:
    """Peak resident set size of this process since start or the last `reset_peak_rss()`, in MiB.

    Linux: `VmHWM` of /proc/self/status, the address space's own high-water mark. getrusage's ru_maxrss
    is not used there because it also keeps the peak of the image before exec (the forking parent's
    pages), which would put a floor under a fresh cell process. Elsewhere: ru_maxrss.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024


def reset_peak_rss() -> bool:
    """Give freed heap pages back (glibc `malloc_trim(0)`), then reset the peak-RSS mark to the current
    RSS (`echo 5 > /proc/self/clear_refs`, Linux >= 4.0). False where unsupported: the peak is then the
    process's lifetime peak.

    Without it a deploy cell's peak would be that of the training form it was converted from (glibc
    keeps freed pages resident: about +50 MiB on RepVGG-A0).
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class MemoryBaseline:
    """Taken before the model is built. Bytes; None where not measurable (CPU, no NVML)."""

    device: str
    nvml_device_used_bytes: Optional[int] = None
    cuda_context_bytes: Optional[int] = None


@dataclass(frozen=True)
class MemoryStats:
    peak_allocated_mib: Optional[float]
    peak_reserved_mib: Optional[float]
    nvml_process_mib: Optional[float]
    nvml_device_delta_mib: Optional[float]
    cuda_context_mib: Optional[float]
    peak_rss_mib: Optional[float]


def _require_cuda(device: torch.device) -> torch.device:
    if not torch.cuda.is_available():
        raise RuntimeError(f"memory of device '{device}' needs CUDA, but torch.cuda.is_available() is False "
                           f"(torch {torch.__version__}); use device 'cpu' on this machine")
    return torch.device("cuda", nvml_lib.torch_index(device))


def _has_context(index: int) -> Optional[bool]:
    probe = getattr(torch._C, "_cuda_hasPrimaryContext", None)
    return bool(probe(index)) if probe is not None else None


def _create_context(device: torch.device) -> None:
    """Create the primary context with one tiny allocation, then give the allocator's block back."""
    block = torch.empty(1, device=device)
    torch.cuda.synchronize(device)
    del block
    torch.cuda.empty_cache()


def take_baseline(device: torch.device | str) -> MemoryBaseline:
    """Create the CUDA context (measuring it) and record device-wide used memory; call before the model."""
    device = torch.device(device)
    if device.type != "cuda":
        return MemoryBaseline(device=str(device))
    device = _require_cuda(device)
    handle = nvml_lib.handle_for(device)
    fresh = _has_context(device.index) is False
    before = nvml_lib.device_used_bytes(handle) if fresh else None
    _create_context(device)
    after = nvml_lib.device_used_bytes(handle)
    own = nvml_lib.process_used_bytes(handle)
    if own is not None:
        context: Optional[int] = own - torch.cuda.memory_reserved(device)
    elif before is not None and after is not None:
        context = after - before
    else:
        context = None
    return MemoryBaseline(device=str(device), nvml_device_used_bytes=after, cuda_context_bytes=context)


def _reset_peaks(device: torch.device) -> None:
    gc.collect()
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)


def _peaks(device: torch.device) -> tuple[int, int]:
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device), torch.cuda.max_memory_reserved(device)


def _eager_pass(fn: Callable[[], Any], device: torch.device, calls: int, graph_calls: int) -> tuple[int, int]:
    with torch.cuda.device(device):
        _reset_peaks(device)
        for _ in range(calls):
            fn()
        return _peaks(device)


def _cudagraph_pass(fn: Callable[[], Any], device: torch.device, calls: int,
                    graph_calls: int) -> tuple[int, int]:
    """Peaks over capture and replays; the eager warm-up before the capture is outside them."""
    from bench.measure.cuda_regimes import capture_graph, side_stream_warmup

    with torch.cuda.device(device):
        side = side_stream_warmup(fn, device, calls=2)
        _reset_peaks(device)
        graph = capture_graph(fn, device, side, graph_calls)
        for _ in range(calls):
            graph.replay()
        peaks = _peaks(device)
        del graph
        torch.cuda.empty_cache()
        return peaks


MEMORY_PASSES: dict[str, Callable[[Callable[[], Any], torch.device, int, int], tuple[int, int]]] = {
    "eager": _eager_pass, "pipelined": _eager_pass, "synchronized": _eager_pass, "cpu": _eager_pass,
    "cudagraph": _cudagraph_pass,
}


def measure_memory(fn: Callable[[], Any], device: torch.device | str, baseline: Optional[MemoryBaseline] = None,
                   calls: int = 2, regime: str = "eager", graph_calls: int = 1) -> MemoryStats:
    """Run `fn` `calls` times (two, so state created by the first call, e.g. optimizer buffers, counts),
    eagerly or, for regime "cudagraph", as replays of a graph of `graph_calls` calls (module docstring)."""
    if regime not in MEMORY_PASSES:
        raise unknown("memory regime", regime, MEMORY_PASSES)
    device = torch.device(device)
    if device.type != "cuda":
        gc.collect()
        reset_peak_rss()
        for _ in range(calls):
            fn()
        return MemoryStats(None, None, None, None, None, peak_rss_mib())
    device = _require_cuda(device)
    allocated, reserved = MEMORY_PASSES[regime](fn, device, calls, graph_calls)
    handle = nvml_lib.handle_for(device)
    used = nvml_lib.device_used_bytes(handle)
    base_used = baseline.nvml_device_used_bytes if baseline is not None else None
    delta = used - base_used if used is not None and base_used is not None else None
    context = baseline.cuda_context_bytes if baseline is not None else None
    return MemoryStats(
        peak_allocated_mib=to_mib(allocated), peak_reserved_mib=to_mib(reserved),
        nvml_process_mib=to_mib(nvml_lib.process_used_bytes(handle, os.getpid())),
        nvml_device_delta_mib=to_mib(delta), cuda_context_mib=to_mib(context), peak_rss_mib=peak_rss_mib(),
    )
