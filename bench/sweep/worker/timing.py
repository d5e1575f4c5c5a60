"""Timing a unit's forms: a pair side by side through `bench.measure.paired.measure_pair`, a lone cell
through `bench.measure.timing.measure_latency`. Both return what the unit turns into rows: per-form
`LatencyStats` and, for a pair, the speedup with its interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

import torch

from bench.sweep.protocol import PairOutcome

if TYPE_CHECKING:
    from bench.measure.timing import TimingConfig


@dataclass(frozen=True)
class Timed:
    """Per-form statistics and the pair's outcome (None for a lone cell)."""

    stats: Mapping[str, Any]
    pair: Optional[PairOutcome] = None
    energy_j: Mapping[str, Optional[float]] = field(default_factory=dict)
    """A pair's per-form energy over each form's own blocks (empty for a lone cell or without a counter)."""


def time_pair(fns: Mapping[str, Callable[[], Any]], device: torch.device, regime: str, config: TimingConfig,
              timed_window: Optional[Callable[[], Any]], seed: int,
              block_energy: Optional[Callable[[], Optional[float]]] = None) -> Timed:
    """Both forms in alternating blocks (order and stop rule: `bench.measure.paired`); the energy counter,
    where given, read around every block so each form's energy is its own."""
    from bench.measure.paired import measure_pair

    m = measure_pair(fns, device, regime, config, timed_window=timed_window, seed=seed, block_energy=block_energy)
    return Timed(stats=dict(m.stats), pair=PairOutcome.of(m), energy_j=dict(m.energy_j))


def time_alone(form: str, fn: Callable[[], Any], device: torch.device, regime: str, config: TimingConfig,
               timed_window: Optional[Callable[[], Any]]) -> Timed:
    """One form; the telemetry window spans its timed phase only."""
    from bench.measure.timing import measure_latency

    return Timed(stats={form: measure_latency(fn, device, regime, config, timed_window=timed_window)})
