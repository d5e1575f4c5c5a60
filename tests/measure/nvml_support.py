"""Which NVML quantities this machine answers, for the gpu tests: each test skips per quantity it asserts,
with the driver's reason, instead of failing where a VM's NVML lacks it (NotSupported, NoPermission,
Unknown, FunctionNotFound, ... : every NVMLError)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.measure import nvml_lib

QUANTITIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sm_clock": (("nvmlDeviceGetClockInfo",), ("NVML_CLOCK_SM",)),
    "mem_clock": (("nvmlDeviceGetClockInfo",), ("NVML_CLOCK_MEM",)),
    "max_sm_clock": (("nvmlDeviceGetMaxClockInfo",), ("NVML_CLOCK_SM",)),
    "power": (("nvmlDeviceGetPowerUsage",), ()),
    "temperature": (("nvmlDeviceGetTemperature",), ("NVML_TEMPERATURE_GPU",)),
    "energy": (("nvmlDeviceGetTotalEnergyConsumption",), ()),
    "clock_event_reasons": (("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"),
                            ()),
}
"""Quantity -> (the NVML query, newest name first; the pynvml constants it takes after the handle)."""


def require(quantity: str, device: Any) -> Any:
    """The quantity's current value on `device`, or pytest.skip saying why NVML does not give it here."""
    names, constants = QUANTITIES[quantity]
    lib = nvml_lib.library(warn=False)
    handle = nvml_lib.handle_for(device, warn=False) if lib is not None else None
    if lib is None or handle is None:
        pytest.skip(f"{quantity}: NVML unavailable here ({nvml_lib.unavailable_reason()}), or no NVML device "
                    f"for {device}")
    query = next((getattr(lib, name) for name in names if hasattr(lib, name)), None)
    if query is None:
        pytest.skip(f"{quantity}: this nvidia-ml-py has none of {', '.join(names)}")
    try:
        return query(handle, *(getattr(lib, name) for name in constants))
    except lib.NVMLError as exc:
        pytest.skip(f"{quantity} ({names[0]}) is not given by this driver/VM: {type(exc).__name__}: {exc}")
