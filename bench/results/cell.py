"""A cell: one point of the axes' cartesian product (`bench.results.schema.AXIS_SPECS`), the unit a row
describes.

A field per axis in schema order, plus the reason it is skipped, if any. Defined here, beside the axes,
so that what builds or profiles a cell (`bench.models.workload`, `bench profile`) and what plans and runs
a sweep (`bench.sweep`) share one type; the skip rules and the expansion are the sweep's
(`bench.sweep.plan.cells`).
"""

from __future__ import annotations

from dataclasses import asdict, field, make_dataclass
from typing import Optional

from bench.results.schema import AXES, AXIS_SPECS


class _CellMethods:
    """What a cell does beyond holding its axes; `Cell` below adds one field per axis."""

    def key(self) -> tuple:
        """Values of AXES in schema order: the key `RunWriter.finished_keys()` holds."""
        return tuple(getattr(self, axis) for axis in AXES)

    def axes(self) -> dict:
        return {axis: getattr(self, axis) for axis in AXES}

    def to_dict(self) -> dict:
        return asdict(self)

    def label(self) -> str:
        return (f"{self.model} {self.form} {self.mode} b{self.batch_size} {self.precision} "
                f"{self.memory_format} {self.runtime} r{self.resolution}")


Cell = make_dataclass(
    "Cell", [*((a.name, a.type) for a in AXIS_SPECS), ("skip_reason", Optional[str], field(default=None))],
    bases=(_CellMethods,), frozen=True)
Cell.__module__ = __name__  # so pickle (Ray, worker pools) finds it here
Cell.__doc__ = """One point of the axes' product: a field per `AXIS_SPECS` entry (model, form, mode, batch_size,
precision, memory_format, runtime, resolution), in schema order, plus the reason it is skipped, if any."""
