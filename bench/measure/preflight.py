"""Preflight: is this machine in a state to be measured? One `Check` per concern, pass / warn / fail.

Checks are a registry of functions; each returns a Check, or None when it does not apply here (no GPU
checks on a CPU-only machine, no governor check where the kernel exposes none). `fail` means numbers
taken now would be wrong (clocks held down by heat or a hardware slowdown); `warn` means they may be noisy
or not comparable (other processes on the GPU, non-default clocks, the software power cap active, which
is common for a while after a heavy run and by design under full load, persistence off, a loaded CPU).
"""

from __future__ import annotations

import functools
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Optional

import torch

from bench.measure import nvml_lib
from bench.measure.nvml import HARD_THROTTLE_MASK, SW_POWER_CAP, decode_reasons, read_reasons

VERDICTS: tuple[str, ...] = ("pass", "warn", "fail")
HOT_MARGIN_C = 10
HOT_FALLBACK_C = 80
CPU_LOAD_FRACTION = 0.5
GOVERNOR = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


@dataclass(frozen=True)
class Check:
    name: str
    verdict: str
    detail: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict '{self.verdict}' is unknown; known: {', '.join(VERDICTS)}")

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def line(self) -> str:
        return f"[{self.verdict.upper()}] {self.name}: {self.detail}"


CHECKS: list[Callable[[], Optional[Check]]] = []


def register_check(fn: Callable[[], Optional[Check]]) -> Callable[[], Optional[Check]]:
    CHECKS.append(fn)
    return fn


GpuCheck = Callable[[ModuleType, Any], Optional[Check]]
"""A check of cuda:0 through NVML: `fn(pynvml, handle)`; the handle is pynvml's opaque device pointer."""


def register_gpu_check(fn: GpuCheck) -> Callable[[], Optional[Check]]:
    """Register `fn` as a check that runs only where cuda:0 has an NVML handle (elsewhere it does not
    apply: None)."""

    @functools.wraps(fn)
    def check() -> Optional[Check]:
        if not torch.cuda.is_available():
            return None
        handle = nvml_lib.handle_for(torch.device("cuda", 0), warn=False)
        lib = nvml_lib.library(warn=False)
        return fn(lib, handle) if handle is not None and lib is not None else None

    return register_check(check)


@register_check
def gpu() -> Check:
    if not torch.cuda.is_available():
        return Check("gpu", "warn", "no CUDA GPU visible (torch.cuda.is_available() is False): CPU-only, "
                                    "CUDA timing regimes and GPU memory/telemetry columns are unavailable")
    names = sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())})
    return Check("gpu", "pass", f"{torch.cuda.device_count()} visible: {', '.join(names)}")


@register_check
def nvml() -> Optional[Check]:
    if not torch.cuda.is_available():
        return None
    if nvml_lib.library(warn=False) is None:
        return Check("nvml", "warn", f"NVML unavailable ({nvml_lib.unavailable_reason()}): no power, clock, "
                                     f"temperature or energy columns")
    if nvml_lib.handle_for(torch.device("cuda", 0), warn=False) is None:
        return Check("nvml", "warn", "cuda:0 matches no NVML device: no telemetry columns")
    return Check("nvml", "pass", "NVML reachable, cuda:0 mapped to its NVML device")


@register_gpu_check
def gpu_processes(lib: ModuleType, handle: Any) -> Optional[Check]:
    others = nvml_lib.other_processes(handle)
    if not others:
        return Check("gpu_processes", "pass", "no other process on cuda:0")
    listed = ", ".join(f"pid {pid}" + (f" ({used / 2**20:.0f} MiB)" if used else "") for pid, used in others)
    return Check("gpu_processes", "warn", f"{len(others)} other process(es) on cuda:0 share it: {listed} "
                                          f"(in a container this may list this process under its host pid)")


@register_gpu_check
def gpu_temperature(lib: ModuleType, handle: Any) -> Optional[Check]:
    temp = nvml_lib.query(lib.nvmlDeviceGetTemperature, handle, lib.NVML_TEMPERATURE_GPU)
    if temp is None:
        return Check("gpu_temperature", "warn", "temperature not readable through NVML")
    slowdown = nvml_lib.query(lib.nvmlDeviceGetTemperatureThreshold, handle,
                              lib.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN)
    if slowdown is not None and temp >= slowdown:
        return Check("gpu_temperature", "fail", f"{temp} C, at or above the slowdown threshold {slowdown} C")
    hot = slowdown - HOT_MARGIN_C if slowdown is not None else HOT_FALLBACK_C
    limit = f" (slowdown at {slowdown} C)" if slowdown is not None else ""
    return Check("gpu_temperature", "warn" if temp >= hot else "pass", f"{temp} C{limit}")


def clocks_check(bits: Optional[int], app_mhz: Optional[int], default_mhz: Optional[int]) -> Check:
    """The clocks verdict from the current clock-event reason bits and the application SM clocks.

    fail: a hardware slowdown, thermal slowdown or the power brake holds the clocks down now. warn: only
    the software power cap is active (a card sits at it by design under load, and for a while after a
    heavy run: the timed rows judge their own clocks, `bench.measure.nvml.throttle_verdict`), or the
    application clock was changed from its default."""
    if bits is not None and bits & HARD_THROTTLE_MASK:
        reasons = ", ".join(decode_reasons(bits & HARD_THROTTLE_MASK))
        return Check("gpu_clocks", "fail", f"clocks held down right now: {reasons}")
    if bits is not None and bits & SW_POWER_CAP:
        return Check("gpu_clocks", "warn", "the software power cap is active right now (normal under load and "
                                           "for a while after a heavy run; each row judges its own clocks)")
    if app_mhz is not None and default_mhz is not None and app_mhz != default_mhz:
        return Check("gpu_clocks", "warn", f"application SM clock {app_mhz} MHz differs from the default "
                                           f"{default_mhz} MHz (`nvidia-smi -rac` restores it)")
    detail = f"application SM clock {app_mhz} MHz (default)" if app_mhz is not None else "no clock event active"
    return Check("gpu_clocks", "pass", detail)


@register_gpu_check
def gpu_clocks(lib: ModuleType, handle: Any) -> Optional[Check]:
    return clocks_check(read_reasons(lib, handle),
                        nvml_lib.query(lib.nvmlDeviceGetApplicationsClock, handle, lib.NVML_CLOCK_SM),
                        nvml_lib.query(lib.nvmlDeviceGetDefaultApplicationsClock, handle, lib.NVML_CLOCK_SM))


@register_gpu_check
def gpu_power_limit(lib: ModuleType, handle: Any) -> Optional[Check]:
    enforced = nvml_lib.query(lib.nvmlDeviceGetEnforcedPowerLimit, handle)
    default = nvml_lib.query(lib.nvmlDeviceGetPowerManagementDefaultLimit, handle)
    if enforced is None:
        return None
    if default is not None and enforced < default:
        return Check("gpu_power_limit", "warn", f"power limit {enforced / 1000:.0f} W is below the default "
                                                f"{default / 1000:.0f} W")
    return Check("gpu_power_limit", "pass", f"power limit {enforced / 1000:.0f} W")


@register_gpu_check
def gpu_persistence(lib: ModuleType, handle: Any) -> Optional[Check]:
    mode = nvml_lib.query(lib.nvmlDeviceGetPersistenceMode, handle)
    if mode is None:
        return None
    if mode == lib.NVML_FEATURE_ENABLED:
        return Check("gpu_persistence", "pass", "persistence mode on")
    return Check("gpu_persistence", "warn", "persistence mode off: the driver may unload between runs and "
                                            "re-initialise on the next one (`nvidia-smi -pm 1`)")


@register_check
def cpu_load() -> Optional[Check]:
    if not hasattr(os, "getloadavg"):
        return None
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    detail = f"1-minute load average {load:.2f} on {cores} cores"
    if load > CPU_LOAD_FRACTION * cores:
        return Check("cpu_load", "warn", detail + ": other work competes for the CPU")
    return Check("cpu_load", "pass", detail)


@register_check
def cpu_threads() -> Check:
    threads = torch.get_num_threads()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    detail = f"torch uses {threads} intra-op threads; {usable} cores usable by this process"
    return Check("cpu_threads", "warn" if threads > usable else "pass", detail)


@register_check
def cpu_governor() -> Optional[Check]:
    try:
        governor = GOVERNOR.read_text().strip()
    except OSError:
        return None
    if governor == "performance":
        return Check("cpu_governor", "pass", "frequency governor 'performance'")
    return Check("cpu_governor", "warn", f"frequency governor '{governor}' (not 'performance'): CPU clocks "
                                         f"vary with load")


def preflight() -> list[Check]:
    """Every check that applies on this machine, in registration order."""
    return [check for check in (fn() for fn in CHECKS) if check is not None]
