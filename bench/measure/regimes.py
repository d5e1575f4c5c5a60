"""Timing regimes: how one call is timed. A registry, so a new regime is one class and one decorator.

A regime is a `Timer` class built as `Timer(fn, device, config)` and used as a context manager by the
driver in `bench.measure.timing`, which calls, in order: `first_call_ms()` once, `prepare()` once
(returns the untimed calls it made, e.g. the eager warm-up before a CUDA-graph capture), then `run(n)`
repeatedly for warm-up windows and timed blocks. `run(n)` returns n samples in ms per call.
`convergence_warmup` says which warm-up the driver gives it: windows until their medians agree (True), or
a fixed `cpu_warmup_s` (False).

"cpu" lives here; "pipelined", "synchronized" and "cudagraph" live in `bench.measure.cuda_regimes`.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

import torch

from bench.usage import unknown

if TYPE_CHECKING:
    from bench.measure.timing import TimingConfig

REGIMES: dict[str, type["Timer"]] = {}


def register_regime(name: str) -> Callable[[type["Timer"]], type["Timer"]]:
    """Class decorator: make `name` a valid `regime` argument of `measure_latency`."""

    def decorate(cls: type["Timer"]) -> type["Timer"]:
        if name in REGIMES:
            raise ValueError(f"timing regime '{name}' is registered twice")
        cls.name = name
        REGIMES[name] = cls
        return cls

    return decorate


def get_regime(name: str) -> type["Timer"]:
    if name not in REGIMES:
        raise unknown("timing regime", name, sorted(REGIMES))
    return REGIMES[name]


def names() -> list[str]:
    return sorted(REGIMES)


@dataclass
class Block:
    """Samples of one `run(n)`: ms per call, and host enqueue ms per call where the regime measures it."""

    samples_ms: list[float]
    enqueue_ms: Optional[list[float]] = None


class Timer:
    """Base of every regime. Subclasses implement `first_call_ms` and `run`."""

    name = "abstract"
    calls_per_sample = 1
    convergence_warmup = True

    def __init__(self, fn: Callable[[], Any], device: torch.device, config: TimingConfig) -> None:
        self.fn = fn
        self.device = device
        self.config = config

    def __enter__(self) -> "Timer":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
            return
        with contextlib.suppress(Exception):  # report the error in flight, not one from cleaning up
            self.close()

    @property
    def num_threads(self) -> Optional[int]:
        """Intra-op threads the calls ran with, where they matter (the CPU), else None."""
        return None

    def first_call_ms(self) -> float:
        raise NotImplementedError

    def prepare(self) -> int:
        return 0

    def run(self, n: int) -> Block:
        raise NotImplementedError

    def close(self) -> None:
        pass


@register_regime("cpu")
class CpuTimer(Timer):
    """Host wall-clock per call with `time.perf_counter_ns` (monotonic, ns resolution, ~100 ns overhead).

    The calls run with whatever `torch.get_num_threads()` is (this regime never changes it) and the
    count is recorded in the stats: a CPU latency means nothing without its thread count. Warm-up is a
    fixed `cpu_warmup_s`: CPU forwards settle within their first few calls.
    """

    convergence_warmup = False

    def __init__(self, fn: Callable[[], Any], device: torch.device, config: TimingConfig) -> None:
        if device.type != "cpu":
            raise ValueError(f"timing regime 'cpu' times host work but the device is '{device}'; "
                             f"use one of pipelined, synchronized, cudagraph for CUDA devices")
        super().__init__(fn, device, config)

    @property
    def num_threads(self) -> Optional[int]:
        return torch.get_num_threads()

    def first_call_ms(self) -> float:
        start = time.perf_counter_ns()
        self.fn()
        return (time.perf_counter_ns() - start) / 1e6

    def run(self, n: int) -> Block:
        fn, clock = self.fn, time.perf_counter_ns
        samples = [0.0] * n
        for i in range(n):
            start = clock()
            fn()
            samples[i] = (clock() - start) / 1e6
        return Block(samples)


from bench.measure import cuda_regimes  # noqa: E402,F401  (registers the CUDA regimes)
