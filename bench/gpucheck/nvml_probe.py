"""`python -m bench.gpucheck.nvml_probe`: one JSON line saying which NVML readings the cells rely on work
on device 0 (a VM's NVML often lacks the energy counter or the clock-event reasons)."""

from __future__ import annotations

import json

from bench.measure import nvml_lib


def probe() -> dict[str, object]:
    lib = nvml_lib.library(warn=False)
    if lib is None:
        return {"nvml": False, "reason": nvml_lib.unavailable_reason()}
    handle = nvml_lib.handle_for("cuda:0", warn=False)
    if handle is None:
        return {"nvml": True, "handle": None, "reason": "no NVML handle matches torch's cuda:0"}
    reasons_fn = (getattr(lib, "nvmlDeviceGetCurrentClocksEventReasons", None)
                  or getattr(lib, "nvmlDeviceGetCurrentClocksThrottleReasons"))

    def read(fn, *args):  # noqa: ANN001, ANN202 - pynvml functions
        value = nvml_lib.query(fn, handle, *args, default="unsupported")
        return value

    return {
        "nvml": True,
        "name": read(lib.nvmlDeviceGetName),
        "driver": nvml_lib.query(lib.nvmlSystemGetDriverVersion, default="unsupported"),
        "energy_mj": read(lib.nvmlDeviceGetTotalEnergyConsumption),
        "clocks_event_reasons": read(reasons_fn),
        "sm_clock_mhz": read(lib.nvmlDeviceGetClockInfo, lib.NVML_CLOCK_SM),
        "sm_clock_max_mhz": read(lib.nvmlDeviceGetMaxClockInfo, lib.NVML_CLOCK_SM),
        "sm_clock_default_app_mhz": read(lib.nvmlDeviceGetDefaultApplicationsClock, lib.NVML_CLOCK_SM),
        "power_mw": read(lib.nvmlDeviceGetPowerUsage),
        "power_limit_mw": read(lib.nvmlDeviceGetEnforcedPowerLimit),
        "temperature_c": read(lib.nvmlDeviceGetTemperature, lib.NVML_TEMPERATURE_GPU),
    }


if __name__ == "__main__":
    print(json.dumps(probe(), default=str))
