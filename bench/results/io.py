"""Writing one run folder so that a kill at any moment loses at most the cell in flight.

Layout of `results/<hardware>/<run_id>/`:

- `cells/<cellhash>.json`: the source of truth, one small file per finished cell holding its row and its
  raw samples. Each is written to a temporary file, fsynced, then `os.replace`d over its final name, and
  the folder is fsynced: a reader sees the old file or the new one, never half of one. Appending a cell
  whose key is already there replaces it (a retried cell).
- `pairs/<pairhash>.json`: one file per train/deploy pair timed side by side (a `Speedup` row), written
  the same way, after the two cell files of the pair (`write_unit`).
- `samples.parquet`, `summary.parquet`, `summary.csv`, `speedups.parquet`, `speedups.csv`: generated from
  the cell and pair files, each through the same temp + fsync + replace, in that order, so a summary row
  always has its samples. A sweep writes them when it ends and at most every `FLUSH_EVERY_S` while it runs
  (`write_unit` + `flush`), never after every cell (that rewrite grew with the run: quadratic); `append`
  and `extend` write them at once. A kill leaves the tables behind the cell files; the next `RunWriter`
  on the folder regenerates them, and readers (`bench.results.read`) build them from the cell files in
  memory meanwhile.
- `env.json`: the environment fingerprint.

The cell hash is the first 16 hex digits of sha256 over the JSON list of the cell's AXES values.
Writers of one folder serialise through an advisory lock (`cells/.lock`), so two processes never interleave.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from bench.results.layout import (CELLS_DIR, ENV_FILE, PAIRS_DIR, SAMPLES_FILE, SPEEDUPS_CSV, SPEEDUPS_FILE,
                                  SUMMARY_CSV, SUMMARY_FILE)
from bench.results.schema import AXES, COLUMNS, SPEEDUP_COLUMNS, STATUSES, Result, Speedup
from bench.results.tables import clean_number, run_tables
from bench.usage import unknown

try:
    import fcntl
except ImportError:  # pragma: no cover - not a POSIX system: writers of one folder must not overlap
    fcntl = None  # type: ignore[assignment]

FLUSH_EVERY_S = 30.0
CELL_FORMAT = 1
RETRYABLE_STATUSES: tuple[str, ...] = ("error", "timeout")
"""Statuses `finished_keys(retry_failed=True)` leaves out, so a resumed sweep runs those cells again.
An `oom` is a property of the cell (it will not fit next time either) and stays finished."""

def cell_hash(key: Sequence[Any]) -> str:
    """Stable file name of a cell: sha256 of its AXES values as a JSON list, 16 hex digits."""
    return hashlib.sha256(json.dumps(list(key), default=str).encode()).hexdigest()[:16]


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], None], sync_dir: bool = True) -> None:
    """`write(tmp)` then fsync and `os.replace(tmp, path)`: `path` is always the old or the new file.

    `sync_dir=False` leaves the folder's fsync (which makes the rename itself durable) to the caller, who
    replaces several files and syncs the folder once.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_dir:
        _fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes, sync_dir: bool = True) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data), sync_dir)


def atomic_write_table(path: Path, table: pa.Table, sync_dir: bool = True) -> None:
    """Parquet (or CSV when the name ends in .csv) through `atomic_write`."""
    if path.suffix == ".csv":
        atomic_write(path, lambda tmp: pacsv.write_csv(table, str(tmp)), sync_dir)
    else:
        atomic_write(path, lambda tmp: pq.write_table(table, str(tmp)), sync_dir)


class RunWriter:
    """Appends rows of one run to its folder; see the module docstring for the layout and guarantees."""

    def __init__(self, run_dir: Path | str) -> None:
        self.run_dir = Path(run_dir)
        self.cells_dir = self.run_dir / CELLS_DIR
        self.cells_dir.mkdir(parents=True, exist_ok=True)
        self.pairs_dir = self.run_dir / PAIRS_DIR
        self._cache: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}
        self._pairs: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}
        self._flushed = time.monotonic()
        with self._locked():
            self._remove_stale_temps()
            if not any(self.cells_dir.glob("*.json")):
                self._adopt_tables()
            self._refresh()
            self._write_tables()

    def append(self, result: Result, samples_ms: Sequence[float] | None) -> None:
        """Write one finished cell (replacing an earlier row of the same key) and regenerate the tables."""
        self.extend([(result, samples_ms)])

    def extend(self, cells: Iterable[tuple[Result, Sequence[float] | None]]) -> None:
        """Write several cells, each atomically, then regenerate the tables once (imports, tests)."""
        encoded = [(result, self._encode(result, samples)) for result, samples in cells]
        if not encoded:
            return
        with self._locked():
            self._refresh()
            for result, _ in encoded:
                self._check_same_run(result, encoded[0][0])
            for result, data in encoded:
                atomic_write_bytes(self.cells_dir / f"{cell_hash(result.cell_key())}.json", data, sync_dir=False)
            _fsync_dir(self.cells_dir)
            self._refresh()
            self._write_tables()

    def write_unit(self, cells: Sequence[tuple[Result, Sequence[float] | None]],
                   pair: Speedup | None = None) -> None:
        """Write the cell files of one unit of work (a cell or a pair) and its pair file, each atomically;
        the tables follow at the next `flush` (at most `FLUSH_EVERY_S` later, see `flush(force=False)`)."""
        encoded = [(result, self._encode(result, samples)) for result, samples in cells]
        with self._locked():
            self._refresh()
            for result, data in encoded:
                self._check_same_run(result, encoded[0][0])
                atomic_write_bytes(self.cells_dir / f"{cell_hash(result.cell_key())}.json", data, sync_dir=False)
            _fsync_dir(self.cells_dir)
            if pair is not None:
                self.pairs_dir.mkdir(exist_ok=True)
                record = {"format": CELL_FORMAT, "written_ns": time.time_ns(), "row": pair.to_dict()}
                atomic_write_bytes(self.pairs_dir / f"{cell_hash(pair.pair_key())}.json",
                                   json.dumps(record, allow_nan=True).encode())
        self.flush(force=False)

    def flush(self, force: bool = True) -> None:
        """Regenerate the tables from the cell and pair files (with `force=False`: only if the last flush
        is `FLUSH_EVERY_S` old)."""
        if not force and time.monotonic() - self._flushed < FLUSH_EVERY_S:
            return
        with self._locked():
            self._refresh()
            self._write_tables()
        self._flushed = time.monotonic()

    def _encode(self, result: Result, samples_ms: Sequence[float] | None) -> bytes:
        if not isinstance(result, Result):
            raise TypeError(f"append() takes a bench.results.Result, got {type(result).__name__}")
        record = {"format": CELL_FORMAT, "written_ns": time.time_ns(), "row": result.to_dict(),
                  "samples_ms": self._check_samples(result, samples_ms)}
        return json.dumps(record, allow_nan=True).encode()

    def finished_keys(self, retry_failed: bool = False) -> set[tuple]:
        """Keys (AXES values) of cells already written; with `retry_failed`, error/timeout cells are left
        out so a resumed sweep runs them again (their new row replaces the old one)."""
        self._refresh()
        skip = RETRYABLE_STATUSES if retry_failed else ()
        return {tuple(rec["row"][a] for a in AXES) for _, rec in self._cache.values()
                if rec["row"]["status"] not in skip}

    def write_env(self, env: dict[str, Any]) -> None:
        """`env.json`: the fingerprint of the machine and software the run was measured on."""
        data = json.dumps(env, indent=2, sort_keys=True, default=str).encode()
        with self._locked():
            atomic_write_bytes(self.run_dir / ENV_FILE, data)

    def __len__(self) -> int:
        self._refresh()
        return len(self._cache)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if fcntl is None:
            yield
            return
        with open(self.cells_dir / ".lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _remove_stale_temps(self) -> None:
        """Temp files left by a killed writer (only ever created under the lock we now hold)."""
        for folder in (self.run_dir, self.cells_dir, self.pairs_dir):
            for path in folder.glob(".*.tmp-*"):
                path.unlink(missing_ok=True)

    def _adopt_tables(self) -> None:
        """A folder with tables but no cell files (a committed run: git ignores cells/) gets its cell files
        back from the tables, so resuming it keeps its rows instead of starting from nothing."""
        summary_file = self.run_dir / SUMMARY_FILE
        if not summary_file.is_file():
            return
        rows = pq.read_table(summary_file).to_pylist()
        samples: dict[tuple, list[tuple[int, float]]] = {}
        samples_file = self.run_dir / SAMPLES_FILE
        if rows and samples_file.is_file():
            for s in pq.read_table(samples_file).to_pylist():
                key = (s["run_id"], *(s[a] for a in AXES))
                samples.setdefault(key, []).append((s["sample_index"], s["latency_ms"]))
        start = time.time_ns()
        for i, row in enumerate(rows):
            try:
                result = Result(**{k: clean_number(v) for k, v in row.items() if k in COLUMNS})
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{summary_file}: row {i} is not a Result ({exc})") from exc
            values = [v for _, v in sorted(samples.get((result.run_id, *result.cell_key()), []))]
            record = {"format": CELL_FORMAT, "written_ns": start + i, "row": result.to_dict(), "samples_ms": values}
            atomic_write_bytes(self.cells_dir / f"{cell_hash(result.cell_key())}.json",
                               json.dumps(record, allow_nan=True).encode(), sync_dir=False)
        _fsync_dir(self.cells_dir)
        speedups_file = self.run_dir / SPEEDUPS_FILE
        if rows and speedups_file.is_file():
            self.pairs_dir.mkdir(exist_ok=True)
            for i, row in enumerate(pq.read_table(speedups_file).to_pylist()):
                pair = Speedup(**{k: clean_number(v) for k, v in row.items() if k in SPEEDUP_COLUMNS})
                record = {"format": CELL_FORMAT, "written_ns": start + i, "row": pair.to_dict()}
                atomic_write_bytes(self.pairs_dir / f"{cell_hash(pair.pair_key())}.json",
                                   json.dumps(record, allow_nan=True).encode(), sync_dir=False)
            _fsync_dir(self.pairs_dir)

    def _refresh(self) -> None:
        """Read cell files that are new or changed since the last look; forget the ones that are gone."""
        seen: set[str] = set()
        for path in self.cells_dir.glob("*.json"):
            stat = path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            seen.add(path.name)
            cached = self._cache.get(path.name)
            if cached is None or cached[0] != stamp:
                self._cache[path.name] = (stamp, read_cell(path))
        for name in set(self._cache) - seen:
            del self._cache[name]
        self._refresh_pairs()

    def _refresh_pairs(self) -> None:
        seen: set[str] = set()
        for path in self.pairs_dir.glob("*.json") if self.pairs_dir.is_dir() else ():
            stat = path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            seen.add(path.name)
            cached = self._pairs.get(path.name)
            if cached is None or cached[0] != stamp:
                self._pairs[path.name] = (stamp, json.loads(path.read_bytes()))
        for name in set(self._pairs) - seen:
            del self._pairs[name]

    def _check_same_run(self, result: Result, first: Result) -> None:
        """Every row of a folder belongs to one run on one hardware (results/<hardware>/<run_id>/)."""
        own = cell_hash(result.cell_key()) + ".json"
        others = [rec["row"] for name, (_, rec) in self._cache.items() if name != own]
        where = (others[0]["run_id"], others[0]["hardware"]) if others else (first.run_id, first.hardware)
        if (result.run_id, result.hardware) != where:
            raise ValueError(
                f"{self.run_dir} holds run '{where[0]}' on '{where[1]}'; a row of run "
                f"'{result.run_id}' on '{result.hardware}' belongs in results/<hardware>/<run_id>/")

    @staticmethod
    def _check_samples(result: Result, samples_ms: Sequence[float] | None) -> list[float]:
        values = np.asarray([] if samples_ms is None else samples_ms, dtype=float).ravel()
        if values.size and (not np.all(np.isfinite(values)) or np.any(values < 0)):
            raise ValueError(f"samples of cell {result.cell_key()} must be finite and >= 0 ms")
        return values.tolist()

    def rows(self) -> list[dict[str, Any]]:
        """Every cell's row as this writer last read or wrote its file, oldest first; reads no table."""
        return [rec["row"] for rec in self._records()]

    def _records(self) -> list[dict[str, Any]]:
        return sorted((rec for _, rec in self._cache.values()), key=lambda rec: rec["written_ns"])

    def _write_tables(self) -> None:
        cells = [(self.cells_dir / name, rec) for name, (_, rec) in self._cache.items()]
        tables = run_tables(cells, [rec for _, rec in self._pairs.values()])
        atomic_write_table(self.run_dir / SAMPLES_FILE, tables.samples, sync_dir=False)
        atomic_write_table(self.run_dir / SUMMARY_FILE, tables.summary, sync_dir=False)
        atomic_write_table(self.run_dir / SUMMARY_CSV, tables.summary, sync_dir=False)
        atomic_write_table(self.run_dir / SPEEDUPS_FILE, tables.speedups, sync_dir=False)
        atomic_write_table(self.run_dir / SPEEDUPS_CSV, tables.speedups, sync_dir=False)
        _fsync_dir(self.run_dir)


def read_cell(path: Path) -> dict[str, Any]:
    """A cell file's record, with the fields every row has; ValueError naming the file otherwise."""
    try:
        record = json.loads(path.read_bytes())
        row = record["row"]
        missing = [name for name in ("run_id", "hardware", "status", *AXES) if name not in row]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a cell file ({exc}); move it away and re-run the cell") from exc
    if missing:
        raise ValueError(f"{path}: row lacks {', '.join(missing)}")
    if row["status"] not in STATUSES:
        raise unknown(f"{path}: status", row["status"], STATUSES)
    return record
