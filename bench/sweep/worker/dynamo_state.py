"""torch.compile units: a fresh dynamo state per compile group, and what dynamo did for each cell.

Why a reset: dynamo keeps what it compiled per Python code object for the life of the process, and a
worker serves every unit of its model, all compiling the same `forward`. Without a reset a unit's compile
is a recompile of what earlier units left: a batch size or dtype other than the last one turns on
automatic dynamic shapes (the graph is traced with a symbolic size, other kernels), and past
`torch._dynamo.config.cache_size_limit` recompiles dynamo stops compiling the frame and runs it eagerly,
silently. Later "compile" cells of a sweep like `full` would then time other graphs, or eager code.
`fresh_state()` (`torch._dynamo.reset()`) as a worker starts a unit of another compile group
(`bench.sweep.worker.runtimes.compiled`: the units that share one dynamic-batch graph; every train step is a
group of its own) gives each group the compile a fresh process would do (the inductor's on-disk cache
is left alone: `compile_cache_cold` says whether it was warm).

Counts, read from `torch._dynamo.utils.counters` (process-wide and never reset, so differences are taken):
- `graphs()`: graphs dynamo has produced; over a cell's first call, its compile: 1 when the forward is
  one graph, more with graph breaks, 0 where a graph shared within the group served it.
- `frames()`: frames dynamo has tried to compile; over the timed phase it should not move (every timed
  call runs what the first call compiled): each one is a recompile, after a guard failed.
"""

from __future__ import annotations

from typing import Optional


def counter(group: str, name: str) -> Optional[int]:
    """One of dynamo's and inductor's counters so far, or None where torch does not keep them."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return None
    return int(counters[group].get(name, 0))


def fresh_state() -> None:
    """Forget everything dynamo compiled in this process (module docstring: why, per compile group)."""
    import torch._dynamo

    torch._dynamo.reset()


def graphs() -> Optional[int]:
    return counter("stats", "unique_graphs")


def frames() -> Optional[int]:
    return counter("frames", "total")


def delta(before: Optional[int], after: Optional[int]) -> Optional[int]:
    return None if before is None or after is None else after - before
