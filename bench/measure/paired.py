"""Paired measurement: two forms of one workload timed in alternating short blocks, with a speedup interval.

Interface (kept stable; fields are only ever added):

    measure_pair(fns, device, regime, config=None, timed_window=None, seed=0, block_energy=None)
        -> PairMeasurement

- `fns`: a mapping of exactly two names to zero-argument callables, e.g. {"train": f_train,
  "deploy": f_deploy}. Order matters: speedup = FIRST / SECOND, the median over block pairs of (the first
  form's block median / the second's, `bench.measure.stats.speedup_interval`), so {"train": ...,
  "deploy": ...} gives the deploy form's speedup (> 1: deploy is faster).
- `regime`: as for `measure_latency` ("cpu", "pipelined", "synchronized", "cudagraph"); each form gets
  its own Timer (for "cudagraph", its own graph).
- `config`: a `TimingConfig`; the pair uses `pair_block_s`, `min_block_pairs`, `pair_order`,
  `target_rel_ci`, `min_samples` (per form), `min_time_s`, `timeout_s` (the whole timed phase),
  `max_samples` (per form) and the warm-up fields.
- `timed_window`: zero-argument callable returning a context manager entered once around the whole
  interleaved timed phase (not the first calls, not warm-up). To read the NVML sampler afterwards keep
  it: `sampler = TelemetrySampler(device); measure_pair(..., timed_window=lambda: sampler)`, then
  `sampler.result`; its window holds both forms' blocks (2 * pair_block_s per pair).
- `seed`: drives the block order when `config.pair_order == "random"`.
- `block_energy`: a zero-argument callable reading an energy counter in joules (None when it cannot),
  e.g. `bench.measure.nvml.energy_reader(device)`; read right before and after every timed block, and
  each form's deltas summed into `energy_j[name]`, so each form's energy is its own (a window shared by
  both forms cannot be split). None for a form whose counter failed on any of its blocks.
- Returns `PairMeasurement`: `stats[name]` is a `LatencyStats` per form, filled as `measure_latency`
  fills it (so row columns work unchanged); `speedup_median`, `speedup_ci_low`, `speedup_ci_high` (95%),
  `n_blocks`, `n_pairs`, `stop_reason`, `order`, `block_forms`, `duration_s`, `timed_s`, `energy_j`
  (per form; empty without `block_energy`).

Method. Each form: first call alone, `prepare()`, warm-up (`bench.measure.timing.warm_start`), first
form then second. Then the timed phase: block pairs, one block of each form of about `pair_block_s`
each (so both forms' blocks see the machine for about as long), in the order of `pair_schedule`. After
each pair the stop rule (`pair_stop_reason`) is checked. The speedup and its interval are
`bench.measure.stats.speedup_interval` of the log-ratios of the block medians of each pair (point: their
median; interval: their order-statistic interval, widened by that of ABBA-cycle means): drift slower than a pair is common to both blocks and
cancels, which is why pairing gives a stable ratio on a machine whose speed wanders. Simulated
(tests/measure/test_measure_intervals.py: a known ratio, AR(1) noise with rho = 0.7 and a random-walk
drift of the machine, 12 pairs of 10-sample blocks): the interval covers the ratio in 96% of runs, and
the point's error (sd of log) is 0.037 paired against 0.185 when each form is timed in one go.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

import torch

from bench.measure.regimes import Timer, get_regime
from bench.measure.stats import (CONFIDENCE, LatencyStats, median, relative_half_width,
                                 speedup_interval)
from bench.measure.timing import (TimedWindow, TimingConfig, WarmStart, block_size, median_precision,
                                  warm_start, window)
from bench.usage import unknown

SPEEDUP_CI_METHOD = "block_pair_log_ratio_order_stat"
"""The name rows carry for the speedup interval's method."""


@dataclass(frozen=True)
class PairMeasurement:
    """Two forms timed interleaved. `stats` keys are the names given, in the order given.

    `n_blocks` counts the timed blocks of both forms (2 * `n_pairs`); `block_forms` names each block's
    form in the order they ran; `duration_s` is the wall time of the timed phase, `timed_s` the part
    inside timed blocks. The interval is None only when max_samples stopped the pair before
    `MIN_BLOCK_PAIRS` pairs.
    """

    stats: dict[str, LatencyStats]
    speedup_median: float
    speedup_ci_low: Optional[float]
    speedup_ci_high: Optional[float]
    n_blocks: int
    stop_reason: str
    order: str
    duration_s: float
    timed_s: float
    block_forms: tuple[str, ...] = ()
    speedup_ci_method: str = SPEEDUP_CI_METHOD
    confidence: float = CONFIDENCE
    energy_j: dict[str, Optional[float]] = field(default_factory=dict)
    """Per form, the energy counter's deltas over that form's own timed blocks, summed (J)."""

    @property
    def forms(self) -> tuple[str, str]:
        first, second = self.stats
        return first, second

    @property
    def n_pairs(self) -> int:
        return self.n_blocks // 2

    def summary(self) -> str:
        first, second = self.forms
        ci = (f" [{self.speedup_ci_low:.3f}, {self.speedup_ci_high:.3f}]"
              if self.speedup_ci_low is not None and self.speedup_ci_high is not None else "")
        return (f"{first}/{second} speedup {self.speedup_median:.3f}{ci}, {self.n_pairs} block pairs "
                f"({self.order}), stop={self.stop_reason}")


def pair_schedule(pair_index: int, order: str, rng: Optional[random.Random] = None) -> tuple[int, int]:
    """Form indices (0 = first form) of block pair `pair_index`, in the order they run.

    "ABBA": (0, 1), (1, 0), (0, 1), ... so blocks run A B B A A B B A: each form is as often first as
    second, which cancels a linear drift over every two pairs (the ABBA design of crossover trials).
    "random": each pair's order is a fair coin of `rng` (seeded by `measure_pair`'s seed).
    """
    if order == "ABBA":
        return (0, 1) if pair_index % 2 == 0 else (1, 0)
    if order == "random":
        if rng is None:
            raise ValueError("pair order 'random' needs a random.Random")
        return (0, 1) if rng.random() < 0.5 else (1, 0)
    raise unknown("pair order", order, ("ABBA", "random"))


def pair_stop_reason(first_ms: list[float], second_ms: list[float], block_log_ratios: list[float],
                     elapsed_s: float, config: TimingConfig) -> Optional[str]:
    """Why to stop a pair now, or None. First match wins:

    - "max_samples": either form has max_samples (bounds memory);
    - nothing while a form has fewer than min_samples or there are fewer than min_block_pairs pairs
      (sampling goes on past timeout_s if need be);
    - "converged": elapsed >= min_time_s and both medians' and the speedup's 95% intervals have
      relative half-width <= target_rel_ci;
    - "timeout": elapsed >= timeout_s.
    """
    if max(len(first_ms), len(second_ms)) >= config.max_samples:
        return "max_samples"
    if min(len(first_ms), len(second_ms)) < config.min_samples or len(block_log_ratios) < config.min_block_pairs:
        return None
    if elapsed_s >= config.min_time_s and _precise(first_ms, second_ms, block_log_ratios, config):
        return "converged"
    if elapsed_s >= config.timeout_s:
        return "timeout"
    return None


def _precise(first_ms: list[float], second_ms: list[float], block_log_ratios: list[float],
             config: TimingConfig) -> bool:
    target = config.target_rel_ci
    if median_precision(first_ms) > target or median_precision(second_ms) > target:
        return False
    point, interval = speedup_interval(first_ms, second_ms, block_log_ratios)
    return relative_half_width(interval, point) <= target


@dataclass
class _Interleaved:
    samples_ms: tuple[list[float], list[float]]
    enqueue_ms: tuple[list[float], list[float]]
    in_blocks_s: list[float]
    log_ratios: list[float]
    block_forms: list[int]
    reason: str = ""
    duration_s: float = 0.0
    energy_j: list[Optional[float]] = field(default_factory=lambda: [0.0, 0.0])


EnergyReader = Callable[[], Optional[float]]


def _run_block(timer: Timer, n: int, state: _Interleaved, form: int,
               block_energy: Optional[EnergyReader] = None) -> float:
    """One timed block of `form` (energy counter read right around it); returns its median (ms per call)."""
    joules_before = block_energy() if block_energy is not None else None
    start = time.perf_counter()
    block = timer.run(n)
    state.in_blocks_s[form] += time.perf_counter() - start
    if block_energy is not None:
        joules_after = block_energy()
        spent = state.energy_j[form]
        state.energy_j[form] = (None if spent is None or joules_before is None or joules_after is None
                                else spent + joules_after - joules_before)
    state.samples_ms[form].extend(block.samples_ms)
    state.enqueue_ms[form].extend(block.enqueue_ms or ())
    state.block_forms.append(form)
    block_median = median(block.samples_ms)
    if not block_median > 0:
        raise RuntimeError(f"a timed block of regime '{timer.name}' has median {block_median} ms; the "
                           f"callable is too short to time, give it more work per call")
    return block_median


def _interleave(timers: list[Timer], warm: list[WarmStart], config: TimingConfig, seed: int,
                block_energy: Optional[EnergyReader] = None) -> _Interleaved:
    state = _Interleaved(([], []), ([], []), [0.0, 0.0], [], [])
    sample_ms = [w.sample_ms for w in warm]
    rng = random.Random(seed)
    start = time.perf_counter()
    pair_index = 0
    while True:
        block_medians = [0.0, 0.0]
        for form in pair_schedule(pair_index, config.pair_order, rng):
            left = config.max_samples - len(state.samples_ms[form])
            n = max(1, min(left, block_size(sample_ms[form], config.pair_block_s, 1)))
            block_medians[form] = _run_block(timers[form], n, state, form, block_energy)
            sample_ms[form] = block_medians[form] * timers[form].calls_per_sample
        state.log_ratios.append(math.log(block_medians[0] / block_medians[1]))
        pair_index += 1
        elapsed = time.perf_counter() - start
        reason = pair_stop_reason(*state.samples_ms, state.log_ratios, elapsed, config)
        if reason is not None:
            state.reason, state.duration_s = reason, elapsed
            return state


def _check_forms(fns: Mapping[str, Callable[[], Any]]) -> list[str]:
    names = list(fns)
    if len(names) != 2:
        raise ValueError(f"measure_pair needs exactly two forms (first / second = the speedup); got "
                         f"{len(names)}: {', '.join(map(str, names)) or 'none'}")
    for name in names:
        if not isinstance(name, str) or not callable(fns[name]):
            raise ValueError(f"measure_pair: form {name!r} must be a str naming a zero-argument callable; "
                             f"got {type(fns[name]).__name__}")
    return names


def measure_pair(fns: Mapping[str, Callable[[], Any]], device: torch.device | str, regime: str,
                 config: Optional[TimingConfig] = None, timed_window: Optional[TimedWindow] = None,
                 seed: int = 0, block_energy: Optional[EnergyReader] = None) -> PairMeasurement:
    """Time the two callables of `fns` interleaved; speedup = first / second latency, per block pair.

    Method, arguments and result: module docstring. Errors as `measure_latency` (unknown regime:
    ValueError; CUDA regime without CUDA: RuntimeError), before anything is called.
    """
    names = _check_forms(fns)
    config = config if config is not None else TimingConfig()
    timer_cls = get_regime(regime)
    device = torch.device(device)
    with contextlib.ExitStack() as stack:
        timers = [stack.enter_context(timer_cls(fns[name], device, config)) for name in names]
        warm = [warm_start(timer, config) for timer in timers]
        with window(timed_window):
            state = _interleave(timers, warm, config, seed, block_energy)
    stats = {
        name: LatencyStats.from_samples(
            regime, state.samples_ms[i], stop_reason=state.reason, warmup_iters=warm[i].warmup_iters,
            first_call_ms=warm[i].first_call_ms, host_enqueue_ms=state.enqueue_ms[i] or None,
            warmup_converged=warm[i].converged, calls_per_sample=timers[i].calls_per_sample,
            duration_s=state.duration_s, num_threads=timers[i].num_threads, timed_s=state.in_blocks_s[i])
        for i, name in enumerate(names)
    }
    point, interval = speedup_interval(*state.samples_ms, state.log_ratios)
    return PairMeasurement(
        stats=stats, speedup_median=point, speedup_ci_low=interval[0] if interval else None,
        speedup_ci_high=interval[1] if interval else None, n_blocks=len(state.block_forms),
        stop_reason=state.reason, order=config.pair_order, duration_s=state.duration_s,
        timed_s=sum(state.in_blocks_s), block_forms=tuple(names[i] for i in state.block_forms),
        energy_j=({name: state.energy_j[i] for i, name in enumerate(names)} if block_energy is not None else {}),
    )
