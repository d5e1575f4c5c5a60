"""A run's tables (summary, samples, speedups) as Arrow tables built from its cell and pair records.

One builder for the writer (`bench.results.io.RunWriter`, which writes them into the run folder) and the
readers (`bench.results.read`, which build them in memory when a sweep was killed or is still running
and the files in the folder are behind its `cells/`). Each column is typed from the row dataclass, so an
all-None column keeps its type. A record whose value has the wrong type (a hand-edited or damaged cell
file) is a `CellFileError` naming the file and the column, not a bare Arrow error.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from bench.results.schema import AXES, COLUMNS, PAIR_AXES, SAMPLE_COLUMNS, SPEEDUP_COLUMNS, Result, Speedup

_ARROW_TYPES: dict[type, pa.DataType] = {str: pa.string(), int: pa.int64(), float: pa.float64(),
                                         bool: pa.bool_()}
CellRecord = tuple[Path, dict[str, Any]]
"""A cell file's path and its decoded JSON record (`row`, `samples_ms`, `written_ns`)."""


class CellFileError(ValueError):
    """A cell file whose values do not fit the schema; the message names the file and what to do."""


def _arrow_type(hint: Any) -> pa.DataType:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if args else hint
    if base not in _ARROW_TYPES:
        raise TypeError(f"Result field type {hint!r} has no Parquet type; known: str, int, float, bool")
    return _ARROW_TYPES[base]


def summary_schema() -> pa.Schema:
    """Arrow schema of the summary: one typed column per `Result` field, so all-None columns keep a type."""
    hints = typing.get_type_hints(Result)
    return pa.schema([pa.field(name, _arrow_type(hints[name])) for name in COLUMNS])


def speedups_schema() -> pa.Schema:
    """Arrow schema of `speedups.parquet`: one typed column per `Speedup` field."""
    hints = typing.get_type_hints(Speedup)
    return pa.schema([pa.field(name, _arrow_type(hints[name])) for name in SPEEDUP_COLUMNS])


def samples_schema() -> pa.Schema:
    summary = summary_schema()
    fields = [summary.field(name) for name in ("run_id", *AXES)]
    return pa.schema([*fields, pa.field("sample_index", pa.int64()), pa.field("latency_ms", pa.float64())])


def clean_number(value: Any) -> Any:
    """NaN as None (a missing value), everything else as it is."""
    return None if isinstance(value, float) and math.isnan(value) else value


@dataclass(frozen=True)
class RunTables:
    summary: pa.Table
    samples: pa.Table
    speedups: pa.Table


def run_tables(cells: Sequence[CellRecord], pairs: Sequence[dict[str, Any]]) -> RunTables:
    """The run's tables: one summary row per cell record (in the order the cells were written), their raw
    samples, and each pair record whose two cells are both still in the run (a cell retried alone drops
    its old pair)."""
    cells = sorted(cells, key=lambda item: item[1]["written_ns"])
    schema = summary_schema()
    rows = [{name: clean_number(rec["row"].get(name)) for name in COLUMNS} for _, rec in cells]
    try:
        summary = pa.Table.from_pylist(rows, schema=schema)
        samples = _samples_table([rec for _, rec in cells])
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise _culprit(cells, rows, schema) or exc
    return RunTables(summary, samples, _speedups_table([rec for _, rec in cells], pairs))


def _culprit(cells: Sequence[CellRecord], rows: list[dict[str, Any]], schema: pa.Schema) -> CellFileError | None:
    """The first cell file holding a value its column's type cannot take (None if none is found)."""
    way_out = ("the file was damaged or edited by hand: move it away and run the same command again (that "
               "cell is measured anew)")
    for (path, record), row in zip(cells, rows):
        for name, value in row.items():
            try:
                pa.array([value], type=schema.field(name).type)
            except (pa.ArrowException, TypeError, ValueError):
                return CellFileError(f"{path}: column '{name}' holds {value!r} (a {type(value).__name__}), not "
                                     f"a {schema.field(name).type}; {way_out}")
        try:
            pa.array(record.get("samples_ms") or [], type=pa.float64())
        except (pa.ArrowException, TypeError, ValueError):
            return CellFileError(f"{path}: samples_ms holds values that are not numbers; {way_out}")
    return None


def _samples_table(records: list[dict[str, Any]]) -> pa.Table:
    """Every raw sample of every cell: the cell's run_id and axes repeated, its index, its value in ms."""
    schema = samples_schema()
    counts = np.array([len(rec["samples_ms"]) for rec in records], dtype=np.int64)
    owner = np.repeat(np.arange(len(records)), counts)
    columns = []
    for name in ("run_id", *AXES):
        per_cell = pa.array([rec["row"][name] for rec in records], type=schema.field(name).type)
        columns.append(per_cell.take(pa.array(owner, type=pa.int64())))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]) if len(records) else np.zeros(0, np.int64)
    index = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts, counts)
    values = [v for rec in records for v in rec["samples_ms"]]
    columns.append(pa.array(index, type=pa.int64()))
    columns.append(pa.array(values, type=pa.float64()))
    if tuple(schema.names) != SAMPLE_COLUMNS:
        raise RuntimeError(f"samples schema {schema.names} differs from SAMPLE_COLUMNS {SAMPLE_COLUMNS}")
    return pa.Table.from_arrays(columns, schema=schema)


def _speedups_table(cells: list[dict[str, Any]], pairs: Sequence[dict[str, Any]]) -> pa.Table:
    keys = {tuple(rec["row"][a] for a in AXES) for rec in cells}
    rows = []
    for rec in sorted(pairs, key=lambda rec: rec["written_ns"]):
        row = rec["row"]
        axes = {a: row[a] for a in PAIR_AXES}
        if all(tuple({**axes, "form": form}[a] for a in AXES) in keys for form in ("train", "deploy")):
            rows.append({name: clean_number(row.get(name)) for name in SPEEDUP_COLUMNS})
    return pa.Table.from_pylist(rows, schema=speedups_schema())
