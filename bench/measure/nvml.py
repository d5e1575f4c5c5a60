"""GPU telemetry over the timed phase only: a sampler thread polling NVML, and the energy counter's delta.

Use it as the timing functions' `timed_window` (`measure_latency(..., timed_window=lambda: sampler)`), so
the first call, cuDNN autotuning and warm-up stay outside: their power and clocks describe other phases.

Polled every `interval_s` (and at entry and exit): SM and memory clocks (MHz), power (mW -> W), GPU
temperature (C) and the clock-event reason bits (`nvmlDeviceGetCurrentClocksEventReasons`, called
...ThrottleReasons before driver 535). The energy counter (`nvmlDeviceGetTotalEnergyConsumption`, mJ since
the driver loaded, Volta and newer) is read at entry and exit: energy_j = delta / 1000 and power_w_mean =
energy_j / window, which integrates every instant of the window; where the counter is missing,
power_w_mean is the mean of the polled readings (a board average over the driver's own window, so it
lags) and energy_j is None. Energy per sample: `energy_per_sample_j`; per form of an interleaved pair:
`energy_reader`, read around each of the form's blocks.

Per reason, `reason_fractions` gives the fraction of polls on which its bit was set; `sm_clock_ratio` is the
mean SM clock over the maximum SM clock (`nvmlDeviceGetMaxClockInfo`). The `throttled` verdict
(`throttle_verdict`) says whether the clocks were lowered enough to distrust the cell, by NVBench's rule
(`throttle_rule` names it in every row):
- HW slowdown, SW/HW thermal slowdown, HW power brake: on any poll. These cut clocks hard (HW slowdown
  and the power brake halve them or more) and mean the machine, not the workload, set the speed.
- Clocks: the median polled SM clock below `THROTTLE_CLOCK_FRACTION` (75%) of the reference clock.
  NVBench judges each sample's SM clock against the device's default clock with the same 75%
  (`--throttle-threshold`), discards a sample below it and pauses 50 ms (`--throttle-recovery-delay`);
  the harness keeps every sample and summarises by the median, so a cell counts as throttled where its
  median sample was likely taken below the threshold. Reference: the default application SM clock
  (`nvmlDeviceGetDefaultApplicationsClock`), else the maximum SM clock where the driver lacks it.
- SW power cap alone: reported, never counted. A GPU at full load sits at its power limit by design and
  boosts within it (a 700 W card in fp32 convolutions, for one); its clocks say whether that cost speed.
- Idle, application-clock and sync-boost, display, board-limit and reliability bits: reported, never
  counted (settings and states, not a slowdown under load).
On the CPU or without NVML every field is None (n_polls 0).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Optional

import torch

from bench.measure import nvml_lib

REASON_BITS: dict[int, str] = {
    0x001: "gpu_idle", 0x002: "applications_clocks_setting", 0x004: "sw_power_cap", 0x008: "hw_slowdown",
    0x010: "sync_boost", 0x020: "sw_thermal_slowdown", 0x040: "hw_thermal_slowdown",
    0x080: "hw_power_brake_slowdown", 0x100: "display_clock_setting", 0x200: "board_limit",
    0x400: "reliability",
}
"""NVML clock-event reason bits (nvml.h, nvmlClocksEventReason*)."""

HARD_THROTTLE_MASK = 0x008 | 0x020 | 0x040 | 0x080
"""HW slowdown, SW and HW thermal slowdown, HW power brake: any poll makes a cell untrustworthy."""

SW_POWER_CAP = 0x004
THROTTLE_CLOCK_FRACTION = 0.75
"""NVBench's default throttle threshold: an SM clock below 75% of the reference clock is throttled."""
THROTTLE_RULES: dict[str, str] = {
    "nvbench75_default_app_clock": "HW slowdown, thermal or power brake on any poll, or median SM clock below "
                                   "75% of the default application SM clock",
    "nvbench75_max_clock": "HW slowdown, thermal or power brake on any poll, or median SM clock below 75% of "
                           "the maximum SM clock (the driver gives no default application clock)",
}
"""The `throttle_rule` values a row can carry, and what each means (rows before the column: None, judged by
an older rule that also counted the SW power cap)."""


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


def throttle_verdict(reason_counts: dict[int, int], n_reason_polls: int, sm_clocks_mhz: list[float],
                     reference_mhz: Optional[float]) -> Optional[bool]:
    """True where the polls show clocks lowered enough to distrust the cell (rules: module docstring);
    None where neither the reasons nor the clocks against a reference could be read.
    `reason_counts`: bit -> number of polls with that bit set; `sm_clocks_mhz`: the polled SM clocks."""
    if any(count for bit, count in reason_counts.items() if bit & HARD_THROTTLE_MASK):
        return True
    if sm_clocks_mhz and reference_mhz:
        return bool(_median(sm_clocks_mhz) < THROTTLE_CLOCK_FRACTION * reference_mhz)
    return False if n_reason_polls else None


def reference_clock(lib: ModuleType, handle: Any) -> tuple[Optional[float], Optional[str]]:
    """(reference SM clock in MHz, the `throttle_rule` judged against it): the default application
    clock, else the maximum SM clock; (None, None) where the driver gives neither."""
    default = nvml_lib.query(lib.nvmlDeviceGetDefaultApplicationsClock, handle, lib.NVML_CLOCK_SM)
    if default:
        return float(default), "nvbench75_default_app_clock"
    maximum = nvml_lib.query(lib.nvmlDeviceGetMaxClockInfo, handle, lib.NVML_CLOCK_SM)
    if maximum:
        return float(maximum), "nvbench75_max_clock"
    return None, None


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass(frozen=True)
class Telemetry:
    """What NVML saw over one timed window. Units: W, J, MHz, C, s; fractions in [0, 1].

    `throttle_reasons`: every reason set on any poll; `reason_fractions`: (reason, fraction of polls) for
    each reason seen, in bit order; `sm_clock_mhz_max`: the device's maximum SM clock; `sm_clock_ratio`:
    sm_clock_mhz_mean / sm_clock_mhz_max; `sm_clock_mhz_reference` and `throttle_rule`: the clock the
    `throttled` verdict judged against and the rule's name (`THROTTLE_RULES`); `energy_supported` /
    `reasons_supported`: whether the driver answered those queries (False: NVML present but the query not
    supported, as in some VMs)."""

    power_w_mean: Optional[float] = None
    energy_j: Optional[float] = None
    sm_clock_mhz_mean: Optional[float] = None
    mem_clock_mhz_mean: Optional[float] = None
    temperature_c_max: Optional[float] = None
    throttled: Optional[bool] = None
    throttle_reasons: Optional[tuple[str, ...]] = None
    duration_s: Optional[float] = None
    n_polls: int = 0
    reason_fractions: Optional[tuple[tuple[str, float], ...]] = None
    sm_clock_mhz_max: Optional[float] = None
    sm_clock_ratio: Optional[float] = None
    energy_supported: Optional[bool] = None
    reasons_supported: Optional[bool] = None
    sm_clock_mhz_reference: Optional[float] = None
    throttle_rule: Optional[str] = None

    def reason_fraction(self, reason: str) -> Optional[float]:
        """Fraction of polls with `reason` set (0.0 if never seen), None where reasons were not read."""
        if self.reason_fractions is None:
            return None
        return dict(self.reason_fractions).get(reason, 0.0)


def energy_per_sample_j(energy_j: Optional[float], calls: int, batch_size: int) -> Optional[float]:
    """Energy of one input sample: the counter's delta over the calls it covers / (calls x batch).

    `calls`: forward (or train-step) calls made while the counter ran, e.g. `stats.n * stats.calls_per_sample`
    for one timed callable. A window shared by two interleaved forms cannot be split this way: read the
    counter around each form's own blocks instead (`energy_reader`, `measure_pair(block_energy=...)`)."""
    if energy_j is None or calls <= 0 or batch_size <= 0:
        return None
    return energy_j / (calls * batch_size)


def energy_reader(device: torch.device | str) -> Optional[Callable[[], Optional[float]]]:
    """A function reading `device`'s energy counter in joules (None when a read fails), or None where NVML
    or the counter is missing (a CPU, a VM's NVML without it). For per-block sums: `measure_pair`'s
    `block_energy`. The counter (`nvmlDeviceGetTotalEnergyConsumption`, mJ) advances in steps of the
    driver's update interval, so one short block's delta is coarse; the sum over a form's many blocks is
    not biased by it, as the updates fall at random within the blocks."""
    handle = nvml_lib.handle_for(device)
    if handle is None:
        return None
    lib = nvml_lib.library()
    if lib is None or nvml_lib.query(lib.nvmlDeviceGetTotalEnergyConsumption, handle) is None:
        return None

    def read() -> Optional[float]:
        value = nvml_lib.query(lib.nvmlDeviceGetTotalEnergyConsumption, handle)
        return None if value is None else value / 1000.0

    return read


@dataclass
class _Polls:
    sm_mhz: list[float] = field(default_factory=list)
    mem_mhz: list[float] = field(default_factory=list)
    power_w: list[float] = field(default_factory=list)
    temp_c: list[float] = field(default_factory=list)
    reasons: int = 0
    reason_counts: dict[int, int] = field(default_factory=dict)
    reason_polls: int = 0
    count: int = 0


def _mean(values: list[float]) -> Optional[float]:
    return sum(values) / len(values) if values else None


class TelemetrySampler:
    """`with TelemetrySampler(device) as s: ...` then `s.result` (a Telemetry; all None off NVML/CUDA).

    Around the timed phase only: `measure_latency(fn, device, regime, config, timed_window=lambda: s)`."""

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
            polls.reason_polls += 1
            for bit in _set_bits(bits):
                polls.reason_counts[bit] = polls.reason_counts.get(bit, 0) + 1
        polls.count += 1

    def _summarise(self, duration_s: float, end_mj: Optional[int]) -> Telemetry:
        polls, start_mj = self._polls, self._energy_mj
        energy_j = (end_mj - start_mj) / 1000.0 if end_mj is not None and start_mj is not None else None
        power = energy_j / duration_s if energy_j is not None and duration_s > 0 else _mean(polls.power_w)
        known = polls.reason_polls > 0
        sm_mean = _mean(polls.sm_mhz)
        max_mhz = nvml_lib.query(self._lib.nvmlDeviceGetMaxClockInfo, self._handle, self._lib.NVML_CLOCK_SM)
        sm_max = float(max_mhz) if max_mhz else None
        ratio = sm_mean / sm_max if sm_mean is not None and sm_max else None
        reference, rule = reference_clock(self._lib, self._handle)
        fractions = tuple((decode_reasons(bit)[0], count / polls.reason_polls)
                          for bit, count in sorted(polls.reason_counts.items())) if known else None
        throttled = throttle_verdict(polls.reason_counts, polls.reason_polls, polls.sm_mhz, reference)
        return Telemetry(
            power_w_mean=power, energy_j=energy_j, sm_clock_mhz_mean=sm_mean,
            mem_clock_mhz_mean=_mean(polls.mem_mhz),
            temperature_c_max=max(polls.temp_c) if polls.temp_c else None,
            throttled=throttled, sm_clock_mhz_reference=reference,
            throttle_rule=rule if throttled is not None and polls.sm_mhz and reference else None,
            throttle_reasons=decode_reasons(polls.reasons) if known else None,
            duration_s=duration_s, n_polls=polls.count, reason_fractions=fractions,
            sm_clock_mhz_max=sm_max, sm_clock_ratio=ratio,
            energy_supported=start_mj is not None, reasons_supported=known,
        )


def _set_bits(bits: int) -> list[int]:
    return [1 << i for i in range(bits.bit_length()) if bits >> i & 1]


def _milli(value: Optional[int]) -> Optional[float]:
    return None if value is None else value / 1000.0
