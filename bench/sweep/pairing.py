"""Timing a unit's forms: a pair side by side through `bench.measure.paired.measure_pair`, a lone cell
through `bench.measure.timing.measure_latency`. Both return what the unit turns into rows: per-form
`LatencyStats` and, for a pair, the speedup with its interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

import torch


@dataclass(frozen=True)
class Timed:
    """Per-form statistics and the pair's fields (empty for a lone cell)."""

    stats: Mapping[str, Any]
    pair: dict[str, Any] = field(default_factory=dict)


def timing_config(timing: Mapping[str, Any]) -> Any:
    from bench.measure.timing import TimingConfig

    return TimingConfig(**timing)


def time_pair(fns: Mapping[str, Callable[[], Any]], device: torch.device, regime: str, config: Any,
              timed_window: Optional[Callable[[], Any]], seed: int) -> Timed:
    """Both forms in alternating blocks (order and stop rule: `bench.measure.paired`)."""
    from bench.measure.paired import measure_pair

    m = measure_pair(fns, device, regime, config, timed_window=timed_window, seed=seed)
    pair = {"speedup_median": m.speedup_median, "speedup_ci_low": m.speedup_ci_low,
            "speedup_ci_high": m.speedup_ci_high, "n_blocks": m.n_blocks, "stop_reason": m.stop_reason,
            "timed_s": m.timed_s}
    return Timed(stats=dict(m.stats), pair=pair)


def time_alone(form: str, fn: Callable[[], Any], device: torch.device, regime: str, config: Any,
               timed_window: Optional[Callable[[], Any]]) -> Timed:
    """One form; the telemetry window spans its timed phase only."""
    from bench.measure.timing import measure_latency

    return Timed(stats={form: measure_latency(fn, device, regime, config, timed_window=timed_window)})
