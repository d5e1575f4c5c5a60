"""torch.compile units: a fresh dynamo state per unit, and what dynamo did for each cell.

Why a reset per unit: dynamo keeps what it compiled per Python code object for the life of the process,
and a worker serves every unit of its model, all compiling the same `forward`. Without a reset a unit's
compile is a recompile of what earlier units left: a batch size or dtype other than the last one turns
on automatic dynamic shapes (the graph is traced with a symbolic size, other kernels), and past
`torch._dynamo.config.cache_size_limit` recompiles dynamo stops compiling the frame and runs it eagerly,
silently. Later "compile" cells of a sweep like `full` would then time other graphs, or eager code.
`fresh_state()` (`torch._dynamo.reset()`) at the start of each unit that compiles gives it the compile a
fresh process would do (the inductor's on-disk cache is left alone: `compile_cache_cold` says whether it
was warm).

Counts, read from `torch._dynamo.utils.counters` (process-wide and never reset, so differences are taken):
- `graphs()`: graphs dynamo has produced; over a cell's first call, its compile: 1 when the forward is
  one graph, more with graph breaks.
- `frames()`: frames dynamo has tried to compile; over the timed phase it should not move (every timed
  call runs what the first call compiled): each one is a recompile, after a guard failed.
"""

from __future__ import annotations

from typing import Optional


def _counters() -> Optional[dict]:
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return None
    return counters


def fresh_state() -> None:
    """Forget everything dynamo compiled in this process (module docstring: why, per unit)."""
    import torch._dynamo

    torch._dynamo.reset()


def graphs() -> Optional[int]:
    counters = _counters()
    return None if counters is None else int(counters["stats"].get("unique_graphs", 0))


def frames() -> Optional[int]:
    counters = _counters()
    return None if counters is None else int(counters["frames"].get("total", 0))


def inductor_misses() -> Optional[int]:
    """FX-graph cache misses so far (inductor's counter), or None where torch does not keep it."""
    counters = _counters()
    return None if counters is None else int(counters["inductor"].get("fxgraph_cache_miss", 0))


def delta(before: Optional[int], after: Optional[int]) -> Optional[int]:
    return None if before is None or after is None else after - before
