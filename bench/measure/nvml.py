"""GPU telemetry during a timed window: a sampler thread polling NVML, and the energy counter's delta.

Polled every `interval_s`: SM and memory clocks (MHz), power (mW -> W), GPU temperature (C) and the
clock-event reason bits (`nvmlDeviceGetCurrentClocksEventReasons`, called ...ThrottleReasons before
driver 535). The energy counter (`nvmlDeviceGetTotalEnergyConsumption`, mJ since the driver loaded,
Volta and newer) is read at entry and exit: energy_j = delta / 1000 and power_w_mean = energy_j / window,
which integrates every instant of the window; where the counter is missing, power_w_mean is the mean of
the polled readings (a board average over the driver's own window, so it lags) and energy_j is None.

`throttled` is True when any polled reason is a power cap (SW power cap, HW power brake), thermal (SW or
HW thermal slowdown) or HW slowdown bit; idle, application-clock and sync-boost bits are reported in
`throttle_reasons` but do not count. On the CPU or without NVML every field is None.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Optional

import torch

from bench.measure import nvml_lib

REASON_BITS: dict[int, str] = {
    0x001: "gpu_idle", 0x002: "applications_clocks_setting", 0x004: "sw_power_cap", 0x008: "hw_slowdown",
    0x010: "sync_boost", 0x020: "sw_thermal_slowdown", 0x040: "hw_thermal_slowdown",
    0x080: "hw_power_brake_slowdown", 0x100: "display_clock_setting", 0x200: "board_limit",
    0x400: "reliability",
}
"""NVML clock-event reason bits (nvml.h, nvmlClocksEventReason*)."""

THROTTLE_MASK = 0x004 | 0x008 | 0x020 | 0x040 | 0x080
"""Power cap (SW cap, HW power brake), thermal (SW, HW) and HW slowdown: clocks lowered under load."""


def decode_reasons(bits: int) -> tuple[str, ...]:
    """Names of the set bits, in bit order; unknown bits as hex."""
    names = [name for bit, name in sorted(REASON_BITS.items()) if bits & bit]
    unknown = bits & ~sum(REASON_BITS)
    return tuple(names + ([f"0x{unknown:x}"] if unknown else []))


def read_reasons(lib: ModuleType, handle: Any) -> Optional[int]:
    """Current clock-event reason bits: the query's current name, else its pre-535 name; None if neither."""
    for name in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"):
        getter = getattr(lib, name, None)
        bits = nvml_lib.query(getter, handle) if getter is not None else None
        if bits is not None:
            return int(bits)
    return None


@dataclass(frozen=True)
class Telemetry:
    power_w_mean: Optional[float] = None
    energy_j: Optional[float] = None
    sm_clock_mhz_mean: Optional[float] = None
    mem_clock_mhz_mean: Optional[float] = None
    temperature_c_max: Optional[float] = None
    throttled: Optional[bool] = None
    throttle_reasons: Optional[tuple[str, ...]] = None
    duration_s: Optional[float] = None
    n_polls: int = 0


@dataclass
class _Polls:
    sm_mhz: list[float] = field(default_factory=list)
    mem_mhz: list[float] = field(default_factory=list)
    power_w: list[float] = field(default_factory=list)
    temp_c: list[float] = field(default_factory=list)
    reasons: int = 0
    reasons_known: bool = False
    count: int = 0


def _mean(values: list[float]) -> Optional[float]:
    return sum(values) / len(values) if values else None


class TelemetrySampler:
    """`with TelemetrySampler(device) as s: ...` then `s.result` (a Telemetry; all None off NVML/CUDA)."""

    def __init__(self, device: torch.device | str, interval_s: float = 0.1) -> None:
        self.device = torch.device(device)
        self.interval_s = interval_s
        self.result = Telemetry()
        self._handle: Any = None
        self._lib: Optional[ModuleType] = None
        self._polls = _Polls()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._energy_mj: Optional[int] = None
        self._start = 0.0

    def __enter__(self) -> "TelemetrySampler":
        self._handle = nvml_lib.handle_for(self.device)
        if self._handle is None:
            return self
        self._lib = nvml_lib.library()
        self._energy_mj = nvml_lib.query(self._lib.nvmlDeviceGetTotalEnergyConsumption, self._handle)
        self._start = time.perf_counter()
        self._poll()
        self._thread = threading.Thread(target=self._loop, name="nvml-telemetry", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._poll()
        duration = time.perf_counter() - self._start
        end_mj = nvml_lib.query(self._lib.nvmlDeviceGetTotalEnergyConsumption, self._handle)
        self.result = self._summarise(duration, end_mj)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._poll()

    def _poll(self) -> None:
        lib, handle, polls, query = self._lib, self._handle, self._polls, nvml_lib.query
        for values, value in (
            (polls.sm_mhz, query(lib.nvmlDeviceGetClockInfo, handle, lib.NVML_CLOCK_SM)),
            (polls.mem_mhz, query(lib.nvmlDeviceGetClockInfo, handle, lib.NVML_CLOCK_MEM)),
            (polls.power_w, _milli(query(lib.nvmlDeviceGetPowerUsage, handle))),
            (polls.temp_c, query(lib.nvmlDeviceGetTemperature, handle, lib.NVML_TEMPERATURE_GPU)),
        ):
            if value is not None:
                values.append(float(value))
        bits = read_reasons(lib, handle)
        if bits is not None:
            polls.reasons |= bits
            polls.reasons_known = True
        polls.count += 1

    def _summarise(self, duration_s: float, end_mj: Optional[int]) -> Telemetry:
        polls, start_mj = self._polls, self._energy_mj
        energy_j = (end_mj - start_mj) / 1000.0 if end_mj is not None and start_mj is not None else None
        power = energy_j / duration_s if energy_j is not None and duration_s > 0 else _mean(polls.power_w)
        known = polls.reasons_known
        return Telemetry(
            power_w_mean=power, energy_j=energy_j, sm_clock_mhz_mean=_mean(polls.sm_mhz),
            mem_clock_mhz_mean=_mean(polls.mem_mhz),
            temperature_c_max=max(polls.temp_c) if polls.temp_c else None,
            throttled=bool(polls.reasons & THROTTLE_MASK) if known else None,
            throttle_reasons=decode_reasons(polls.reasons) if known else None,
            duration_s=duration_s, n_polls=polls.count,
        )


def _milli(value: Optional[int]) -> Optional[float]:
    return None if value is None else value / 1000.0
