"""The runtimes of the `runtime` axis: one module each, registered by name (`base.RUNTIMES`).

`get(name)` returns a runtime; `availability(device_type)` says for each one whether it can run here and
why not (`bench run --runtime list`). The names are the `runtime` axis' choices in
`bench.results.schema.AXIS_SPECS` (which imports nothing), kept equal by a test.
"""

from __future__ import annotations

from typing import Optional

from bench.sweep.worker.runtimes import compiled, eager, onnxruntime, openvino, tensorrt  # noqa: F401 - registration
from bench.sweep.worker.runtimes.base import RUNTIMES, Opened, Runtime, RuntimeRecord, cuda_missing
from bench.usage import unknown

__all__ = ["RUNTIMES", "Opened", "Runtime", "RuntimeRecord", "availability", "get"]


def get(name: str) -> Runtime:
    if name not in RUNTIMES:
        raise KeyError(str(unknown("runtime", name, RUNTIMES)))
    return RUNTIMES[name]


def availability(device_type: str) -> dict[str, Optional[str]]:
    """Each runtime, in the axis' order -> why it cannot run on `device_type` on this machine (None: it
    can): the device itself, the runtime's devices, then what it lacks (package, provider)."""
    from bench.results.schema import AXIS_SPECS

    names = next(a.choices for a in AXIS_SPECS if a.name == "runtime")
    device = cuda_missing() if device_type == "cuda" else None
    out = {}
    for name in names:
        runtime = get(name)
        if device_type not in runtime.devices:
            out[name] = f"runs on {' or '.join(d.upper() for d in runtime.devices)} only"
        else:
            out[name] = device or runtime.unavailable(device_type)
    return out
