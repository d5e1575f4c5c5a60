"""NVML access shared by telemetry, memory and the fingerprint (`pynvml` from the nvidia-ml-py package).

NVML is initialised once per process. Without it (no driver, no GPU, package missing) every query
answers None and one RuntimeWarning is issued per process, never an exception.

Mapping a torch device to an NVML device: torch numbers the *visible* devices (CUDA_VISIBLE_DEVICES,
in CUDA's order, fastest first by default) while NVML numbers all devices in PCI order, so index i is not
NVML device i in general. The mapping tries, in order: the device UUID torch reports, its PCI bus id,
then the CUDA_VISIBLE_DEVICES entry for the index (an NVML index or a GPU UUID), then the index itself.
"""

from __future__ import annotations

import os
import warnings
from types import ModuleType
from typing import Any, Callable, Optional

import torch

_STATE: dict[str, Any] = {"tried": False, "lib": None, "error": None, "warned": False}

try:
    from pynvml import NVMLError

    _NVML_ERRORS: tuple[type[Exception], ...] = (NVMLError,)
except ImportError:  # no package: no NVML call runs, so none can fail with an NVML error
    _NVML_ERRORS = ()


def warn_once(message: str) -> None:
    """One RuntimeWarning per process for everything NVML-related (a sweep prints it once per cell)."""
    if not _STATE["warned"]:
        _STATE["warned"] = True
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def library(warn: bool = True) -> Optional[ModuleType]:
    """The initialised `pynvml` module, or None (with one warning unless warn=False)."""
    if not _STATE["tried"]:
        _STATE["tried"] = True
        try:
            import pynvml

            pynvml.nvmlInit()
            _STATE["lib"] = pynvml
        except Exception as exc:  # noqa: BLE001 - ImportError, NVMLError_*, OSError: all mean "no NVML"
            _STATE["error"] = f"{type(exc).__name__}: {exc}"
    if _STATE["lib"] is None and warn:
        warn_once(f"NVML is unavailable ({_STATE['error']}); power, clock, temperature, energy and NVML "
                  f"memory columns are left empty")
    return _STATE["lib"]


def unavailable_reason() -> Optional[str]:
    return _STATE["error"]


def reset() -> None:
    """Forget the initialisation and the warning (for tests, and for a child process after fork)."""
    lib = _STATE["lib"]
    if lib is not None:
        query(lib.nvmlShutdown)
    _STATE.update(tried=False, lib=None, error=None, warned=False)


def query(fn: Callable[..., Any], *args: Any, default: Any = None) -> Any:
    """fn(*args), or `default` when NVML answers with an error (not supported, no permission, ...: each
    return code is a subclass of `pynvml.NVMLError`). Any other exception is a bug and propagates."""
    try:
        value = fn(*args)
    except _NVML_ERRORS:
        return default
    return value.decode() if isinstance(value, bytes) else value


def torch_index(device: torch.device) -> int:
    if device.index is not None:
        return device.index
    return torch.cuda.current_device() if torch.cuda.is_available() else 0


def _by_uuid(lib: ModuleType, index: int) -> Any:
    if not torch.cuda.is_available():
        return None
    uuid = str(getattr(torch.cuda.get_device_properties(index), "uuid", "") or "")
    if not uuid:
        return None
    if not uuid.startswith(("GPU-", "MIG-")):
        uuid = "GPU-" + uuid
    return query(lib.nvmlDeviceGetHandleByUUID, uuid)


def _by_pci_bus_id(lib: ModuleType, index: int) -> Any:
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(index)
    parts = [getattr(props, f"pci_{name}_id", None) for name in ("domain", "bus", "device")]
    if any(p is None for p in parts):
        return None
    domain, bus, dev = (int(p) for p in parts)
    return query(lib.nvmlDeviceGetHandleByPciBusId, f"{domain:08X}:{bus:02X}:{dev:02X}.0")


def _by_visible_devices(lib: ModuleType, index: int) -> Any:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return query(lib.nvmlDeviceGetHandleByIndex, index)
    entries = [e.strip() for e in visible.split(",") if e.strip()]
    if index >= len(entries):
        return None
    entry = entries[index]
    if entry.isdigit():
        return query(lib.nvmlDeviceGetHandleByIndex, int(entry))
    return query(lib.nvmlDeviceGetHandleByUUID, entry)


def handle_for(device: torch.device | str, warn: bool = True) -> Any:
    """NVML handle of a torch CUDA device, or None (NVML missing, CPU device, or no match)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    lib = library(warn=warn)
    if lib is None:
        return None
    index = torch_index(device)
    for find in (_by_uuid, _by_pci_bus_id, _by_visible_devices):
        try:
            handle = find(lib, index)
        except (RuntimeError, AssertionError, ValueError):
            handle = None
        if handle is not None:
            return handle
    if warn:
        warn_once(f"torch device {device} matches no NVML device; NVML columns are left empty")
    return None


def process_used_bytes(handle: Any, pid: Optional[int] = None) -> Optional[int]:
    """Device memory NVML attributes to process `pid` (default: this one); None if the PID is not listed.

    Inside a container NVML reports host PIDs, so the process is often not found: None, not zero.
    """
    lib = _STATE["lib"]
    if handle is None or lib is None:
        return None
    pid = os.getpid() if pid is None else pid
    for getter in (lib.nvmlDeviceGetComputeRunningProcesses, lib.nvmlDeviceGetGraphicsRunningProcesses):
        for proc in query(getter, handle, default=[]) or []:
            used = getattr(proc, "usedGpuMemory", None)
            if proc.pid == pid and used is not None:
                return int(used)
    return None


def other_processes(handle: Any) -> list[tuple[int, Optional[int]]]:
    """(pid, used bytes) of every process on the device other than this one (compute and graphics)."""
    lib = _STATE["lib"]
    if handle is None or lib is None:
        return []
    found: dict[int, Optional[int]] = {}
    for getter in (lib.nvmlDeviceGetComputeRunningProcesses, lib.nvmlDeviceGetGraphicsRunningProcesses):
        for proc in query(getter, handle, default=[]) or []:
            if proc.pid != os.getpid():
                found[proc.pid] = getattr(proc, "usedGpuMemory", None)
    return sorted(found.items())


def device_used_bytes(handle: Any) -> Optional[int]:
    lib = _STATE["lib"]
    if handle is None or lib is None:
        return None
    info = query(lib.nvmlDeviceGetMemoryInfo, handle)
    return int(info.used) if info is not None else None
