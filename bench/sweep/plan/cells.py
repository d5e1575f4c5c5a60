"""Cells: one point of the axes' cartesian product, with an NVBench-style skip reason.

A skip rule is a function (cell, device_type) -> reason or None, registered with `@skip_rule`; the first
rule that gives a reason wins; a rule that one condition says is a line of `PLAIN_SKIPS` instead. Skipped
cells are still written as rows (status 'skipped', the reason in `error`) so a results table shows what
was not measured and why, instead of silently missing it.

Cells are ordered so that the train and deploy forms of one configuration run back to back: the pair that
a speedup is computed from is measured minutes apart at most, under the same thermal and clock state.
"""

from __future__ import annotations

import itertools
from typing import Callable, Optional

from bench.results.cell import Cell
from bench.results.precision import PRECISIONS
from bench.results.schema import AXIS_SPECS
from bench.sweep.plan.config import SweepConfig

ORDER: tuple[str, ...] = tuple(a.name for a in sorted(AXIS_SPECS, key=lambda a: a.loop))
"""Loop nesting of the expansion, outermost first (`Axis.loop`; form innermost: pairs are adjacent)."""


SkipRule = Callable[[Cell, str], Optional[str]]
SKIP_RULES: list[SkipRule] = []


def skip_rule(fn: SkipRule) -> SkipRule:
    SKIP_RULES.append(fn)
    return fn


CPU_PRECISIONS: tuple[str, ...] = tuple(p.name for p in PRECISIONS if not (p.tf32 or p.reduced))
"""What a CPU sweep times: fp32, and int8 where a runtime quantizes (TF32 and the reduced dtypes are CUDA
math; which runtimes quantize, and where, each runtime declares: `bench.sweep.worker.runtimes`)."""

PLAIN_SKIPS: tuple[tuple[Callable[[Cell, str], bool], str], ...] = (
    (lambda cell, device: cell.form == "deploy" and cell.mode == "train_step",
     "train_step needs the training form; the deploy form is for inference only"),
    (lambda cell, device: device == "cpu" and cell.precision not in CPU_PRECISIONS,
     "{precision} not timed on CPU (the CPU sweep measures fp32, and int8 where a runtime quantizes)"),
)
"""(applies to (cell, device type), reason with the cell's axes filled in): the rules one condition says."""


@skip_rule
def _plain_skips(cell: Cell, device_type: str) -> Optional[str]:
    return next((reason.format(**cell.axes()) for applies, reason in PLAIN_SKIPS if applies(cell, device_type)),
                None)


@skip_rule
def _runtime_skips(cell: Cell, device_type: str) -> Optional[str]:
    """What the cell's runtime declares it cannot run (device, mode, memory format, precision), then what
    this machine lacks for it (a package, a provider, a GPU): rows with a reason, so a cartesian sweep
    over several runtimes still runs the combinations that exist (`bench.sweep.worker.runtimes`)."""
    from bench.sweep.worker import runtimes

    runtime = runtimes.get(cell.runtime)
    return runtime.combination_problem(cell, device_type) or runtime.unavailable(device_type)


def skip_reason(cell: Cell, device_type: str) -> Optional[str]:
    for rule in SKIP_RULES:
        reason = rule(cell, device_type)
        if reason:
            return reason
    return None


def expand(config: SweepConfig, device_type: str) -> list[Cell]:
    """The cartesian product of the config's axes, in ORDER, each with its skip reason (or None)."""
    cells = []
    for values in itertools.product(*(config.values(axis) for axis in ORDER)):
        cell = Cell(**dict(zip(ORDER, values)))
        reason = skip_reason(cell, device_type)
        cells.append(Cell(**{**cell.to_dict(), "skip_reason": reason}) if reason else cell)
    return cells
