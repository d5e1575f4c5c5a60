"""What the parent hands a cell subprocess or a worker and what it gets back: JSON files.

`CellSpec` -> `CellOutcome`: one `--max-batch` probe in `python -m bench.sweep.worker.probe`.
`UnitSpec` -> `UnitOutcome`: one unit of work (a cell, or a train/deploy pair timed side by side) sent to
a persistent worker, `python -m bench.sweep.worker.serve`, as one line on its stdin.

Files rather than stdout because torch, cuDNN and inductor print to stdout/stderr at will; a result file
written atomically (temp name + rename) at the very end is either complete or absent, and an absent file
means the process died (signal, abort, host OOM killer) or was killed on timeout.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

from bench.results.cell import Cell

if TYPE_CHECKING:
    from bench.measure.paired import PairMeasurement
    from bench.measure.timing import TimingConfig


def default_timing() -> TimingConfig:
    """`TimingConfig()`, imported when first needed: a worker imports this module before torch."""
    from bench.measure.timing import TimingConfig

    return TimingConfig()


@dataclass(frozen=True)
class CellSpec:
    """One `--max-batch` probe, plus how: device type, seed, CPU threads, injected faults. The probe
    builds the cell's form and calls it twice (`bench.sweep.worker.probe`); nothing is timed.

    `module_path`: a `torch.save`d module of the cell's model and form (built once per search group by the
    parent) for the probe to load instead of building it again; None: the probe builds it.
    """

    cell: Cell
    device: str
    seed: int = 0
    num_threads: Optional[int] = None
    faults: tuple[str, ...] = ()
    module_path: Optional[str] = None

    def to_json(self) -> str:
        data = asdict(self)
        data["faults"] = list(self.faults)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> "CellSpec":
        data = json.loads(text)
        data["cell"] = Cell(**data["cell"])
        data["faults"] = tuple(data.get("faults", ()))
        return cls(**data)


@dataclass
class CellOutcome:
    """How a cell ended. `fields` are `Result` fields measured in the subprocess; `samples_ms` the raw
    timing samples (empty unless timed)."""

    status: str
    error: Optional[str] = None
    fields: dict[str, Any] = field(default_factory=dict)
    samples_ms: list[float] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=_jsonable)

    @classmethod
    def from_json(cls, text: str) -> "CellOutcome":
        return cls(**json.loads(text))


def _jsonable(value: Any) -> Any:
    """numpy / torch scalars -> Python numbers; anything else -> its string."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def write_atomic(path: Path, text: str) -> None:
    """`bench.results.io.atomic_write` of a text file (temp + fsync + rename + folder fsync)."""
    from bench.results.io import atomic_write

    atomic_write(path, lambda tmp: tmp.write_text(text))


@dataclass(frozen=True)
class UnitSpec:
    """One unit of work: one cell, or the (train, deploy) cells of a pair, with how to run them.

    `timing`: the sweep's validated `TimingConfig` (to a worker it goes as a JSON table, built again there;
    to a Ray task as the object). `faults[i]` are the injected faults of `cells[i]`. `outcome_path` is
    where the worker writes the `UnitOutcome` (set by the executor). `prebuild=True` asks a worker only to
    build the unit's model forms, fold report and MACs into its cache, and to write nothing: sent to the
    next model's worker while the current one measures, so building is off the sweep's critical path.
    """

    cells: tuple[Cell, ...]
    device: str
    seed: int = 0
    num_threads: Optional[int] = None
    timing: TimingConfig = field(default_factory=default_timing)
    faults: tuple[tuple[str, ...], ...] = ()
    outcome_path: Optional[str] = None
    prebuild: bool = False

    @property
    def is_pair(self) -> bool:
        return len(self.cells) == 2

    def worker_key(self) -> tuple[str, str]:
        """Units with the same key may share a worker process: one per model and runtime."""
        return (self.cells[0].model, self.cells[0].runtime)

    def label(self) -> str:
        first = self.cells[0]
        return first.label().replace(f" {first.form} ", " train+deploy ") if self.is_pair else first.label()

    def to_json(self) -> str:
        data = asdict(self)
        data["cells"] = [asdict(c) for c in self.cells]
        data["faults"] = [list(f) for f in self.faults]
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> "UnitSpec":
        from bench.measure.timing import TimingConfig

        data = json.loads(text)
        data["timing"] = TimingConfig(**data["timing"])
        data["cells"] = tuple(Cell(**c) for c in data["cells"])
        data["faults"] = tuple(tuple(f) for f in data.get("faults", ()))
        return cls(**data)


@dataclass(frozen=True)
class PairOutcome:
    """What timing a pair side by side gave beyond each form's own statistics (those travel in its
    `CellOutcome`): the `bench.measure.paired.PairMeasurement` fields its `Speedup` row holds, by the
    same names."""

    speedup_median: float
    speedup_ci_low: Optional[float]
    speedup_ci_high: Optional[float]
    n_blocks: int
    stop_reason: str
    timed_s: float

    @classmethod
    def of(cls, measurement: PairMeasurement) -> "PairOutcome":
        """Read by name without defaults, so a renamed attribute fails here instead of emptying a column."""
        return cls(**{f.name: getattr(measurement, f.name) for f in fields(cls)})

    def row_fields(self, agreed: bool) -> dict[str, Any]:
        """The `Speedup` row's columns: how the pair was timed, and the speedup with its interval only
        where both forms' rows are ok (`agreed`): a deploy form that computes something else has none."""
        out = asdict(self)
        if not agreed:
            out.update(speedup_median=None, speedup_ci_low=None, speedup_ci_high=None)
        return out


@dataclass
class UnitOutcome:
    """How a unit ended: one `CellOutcome` per cell (same order as the spec) and, for a pair that was
    timed, its `PairOutcome`."""

    cells: list[CellOutcome]
    pair: Optional[PairOutcome] = None

    def to_json(self) -> str:
        pair = asdict(self.pair) if self.pair is not None else None
        return json.dumps({"cells": [asdict(c) for c in self.cells], "pair": pair}, default=_jsonable)

    @classmethod
    def from_json(cls, text: str) -> "UnitOutcome":
        data = json.loads(text)
        pair = PairOutcome(**data["pair"]) if data.get("pair") else None
        return cls(cells=[CellOutcome(**c) for c in data["cells"]], pair=pair)

    @classmethod
    def failed(cls, n_cells: int, status: str, error: str) -> "UnitOutcome":
        """Every cell of the unit ended the same way (timeout, a crashed worker)."""
        return cls(cells=[CellOutcome(status=status, error=error) for _ in range(n_cells)])

    @property
    def failed_any(self) -> bool:
        return any(c.status not in ("ok", "mismatch") for c in self.cells)


def group_units(cells: Sequence[Cell]) -> list[tuple[Cell, ...]]:
    """Cells -> units of work: the train and deploy cells of one inference setting (all axes but `form`
    equal, mode `infer`, neither skipped) become a pair; every other cell is a unit of its own. Units
    keep the cells' order, stably grouped by (model, runtime) so one worker serves them in a row, and
    within that by the runtime's share group (`Runtime.share_group`: torch.compile's units of one
    dynamic-batch graph), so the units that share what the runtime built run in a row."""
    by_key: dict[tuple, dict[str, Cell]] = {}
    for cell in cells:
        if cell.mode == "infer" and not cell.skip_reason:
            key = tuple(v for k, v in cell.axes().items() if k != "form")
            by_key.setdefault(key, {})[cell.form] = cell
    units: list[tuple[Cell, ...]] = []
    placed: set[Cell] = set()
    for cell in cells:
        if cell in placed:
            continue
        key = tuple(v for k, v in cell.axes().items() if k != "form")
        forms = by_key.get(key, {}) if cell.mode == "infer" and not cell.skip_reason else {}
        if {"train", "deploy"} <= set(forms):
            unit: tuple[Cell, ...] = (forms["train"], forms["deploy"])
        else:
            unit = (cell,)
        placed.update(unit)
        units.append(unit)
    from bench.sweep.worker import runtimes

    order: dict[tuple, int] = {}
    first: dict[tuple, int] = {}
    ranked = []
    for index, unit in enumerate(units):
        worker = (unit[0].model, unit[0].runtime)
        group = runtimes.get(unit[0].runtime).share_group(unit[0])
        rank = index if group is None else first.setdefault((worker, group), index)
        ranked.append((order.setdefault(worker, len(order)), rank, index))
    return [units[index] for *_, index in sorted(ranked)]
