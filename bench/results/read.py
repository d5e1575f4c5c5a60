"""Reading result files back, with a schema check whose errors name the file and the problem.

`load(path)` accepts a run folder (`results/<hardware>/<run_id>/`), a hardware folder, all of
`results/` (baselines are skipped: they are copies of runs), or one summary Parquet file such as a
baseline `results/baselines/<hardware>.parquet`. `load_samples(path)` reads the matching raw samples.

A run's cell files (`cells/`) are its source of truth; its tables follow them when a sweep flushes (at
most every `bench.results.io.FLUSH_EVERY_S`, and at its end). Where the tables are behind (a sweep still
running, or killed), a run's summary and samples are built from the cell files in memory: the reader
writes nothing into a folder a live sweep may hold, and sees every finished cell.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench.results.io import read_cell
from bench.results.layout import BASELINES_DIR, CELLS_DIR, PAIRS_DIR, SAMPLES_FILE, SAMPLES_SUFFIX, SUMMARY_FILE
from bench.results.schema import COLUMNS, REQUIRED, SAMPLE_COLUMNS, SCHEMA_VERSION, STATUSES
from bench.results.tables import RunTables, run_tables
from bench.usage import UsageError, unknown

HIDDEN_DIRS: tuple[str, ...] = (BASELINES_DIR, CELLS_DIR)
"""Folders `load` does not look into for runs (copies of runs, a run's per-cell files); so is every name
starting with '.'. A run id may be none of these (`bench.sweep.plan.config.check_run_id`)."""


class ResultsFileError(UsageError):
    """A result file is missing, unreadable or does not follow the schema; the message names the file."""


def load(path: Path | str) -> pd.DataFrame:
    """All summary rows under `path` in one DataFrame (columns in schema order, extra columns after)."""
    files = _find(Path(path), SUMMARY_FILE)
    frames = [_validated_summary(f) for f in files]
    frames = [f for f in frames if not f.empty] or frames[:1]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def load_samples(path: Path | str) -> pd.DataFrame:
    """All raw samples under `path` (columns `SAMPLE_COLUMNS`: run_id, the axes, sample_index, latency_ms).

    For a summary file the samples are its sibling: `summary.parquet` -> `samples.parquet`,
    `<hardware>.parquet` -> `<hardware>.samples.parquet`.
    """
    path = Path(path)
    if path.is_file():
        files = [samples_path_for(path)]
    else:
        files = [samples_path_for(f) for f in _find(path, SUMMARY_FILE)]
    frames = [_validated_samples(f) for f in files]
    frames = [f for f in frames if not f.empty] or frames[:1]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def samples_path_for(summary_file: Path) -> Path:
    """Where the raw samples of a summary file live (see `load_samples`)."""
    name = summary_file.name
    if name == SUMMARY_FILE:
        return summary_file.with_name(SAMPLES_FILE)
    if name.endswith(SAMPLES_SUFFIX) or name == SAMPLES_FILE:
        return summary_file
    return summary_file.with_name(name.removesuffix(".parquet") + SAMPLES_SUFFIX)


def _find(path: Path, filename: str) -> list[Path]:
    """Summary files: `path` itself, `path/filename`, or every `filename` below it outside baselines."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ResultsFileError(f"{path}: does not exist; pass results/<hardware>/<run_id>, a hardware "
                               "folder, results/, or a baseline .parquet file")
    if (path / filename).is_file() or (path / CELLS_DIR).is_dir():
        return [path / filename]
    skip = set(HIDDEN_DIRS)
    found = sorted(p for p in path.rglob(filename)
                   if not any(part in skip or part.startswith(".") for part in p.relative_to(path).parts[:-1]))
    if not found:
        raise ResultsFileError(f"{path}: no {filename} found; expected results/<hardware>/<run_id>/{filename}")
    return found


def tables_behind(run_dir: Path | str) -> int:
    """How many cells of a run its summary table does not show yet: cell files written after it (all of
    them when it is missing), or the difference in count; 0 when it is up to date, unreadable (tables are
    replaced atomically, so that is damage the reader names) or the run has no cell files (a committed
    run: git keeps only its tables)."""
    run_dir = Path(run_dir)
    cells = list((run_dir / CELLS_DIR).glob("*.json")) if (run_dir / CELLS_DIR).is_dir() else []
    if not cells:
        return 0
    summary = run_dir / SUMMARY_FILE
    if not summary.exists():
        return len(cells)
    try:
        written, rows = summary.stat().st_mtime_ns, pq.read_metadata(summary).num_rows
    except (OSError, pa.ArrowException):
        return 0
    newer = sum(1 for cell in cells if cell.stat().st_mtime_ns > written)
    return newer or abs(len(cells) - rows)


def behind_note(run_dir: Path | str) -> str | None:
    """One line saying that a run's tables are behind its cell files, why, and what to run; None if not."""
    from bench.results.runlock import holder

    count = tables_behind(run_dir)
    if not count:
        return None
    pid = holder(run_dir)
    why = (f"a sweep (pid {pid}) is writing it" if pid else "its sweep was stopped before it wrote them; "
           "the same `bench run` command resumes the run and rewrites them")
    return f"{run_dir}: its tables are {count} cell(s) behind its cell files ({why}); read from the cell files"


def cell_tables(run_dir: Path | str) -> RunTables:
    """A run's tables built in memory from its cell and pair files; only reads."""
    run_dir = Path(run_dir)
    try:
        cells = [(path, read_cell(path)) for path in sorted((run_dir / CELLS_DIR).glob("*.json"))]
        return run_tables(cells, [_read_pair(path) for path in sorted((run_dir / PAIRS_DIR).glob("*.json"))])
    except (ValueError, OSError) as exc:
        raise ResultsFileError(str(exc)) from exc


def _read_pair(path: Path) -> dict:
    try:
        record = json.loads(path.read_bytes())
        record["row"], record["written_ns"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a pair file ({exc}); move it away (its pair's speedup row is "
                         "written again when the pair is measured again)") from None
    return record


def _read(file: Path) -> pd.DataFrame:
    if file.name in (SUMMARY_FILE, SAMPLES_FILE) and tables_behind(file.parent):
        tables = cell_tables(file.parent)
        return (tables.summary if file.name == SUMMARY_FILE else tables.samples).to_pandas()
    if not file.is_file():
        raise ResultsFileError(f"{file}: does not exist (every summary needs its raw samples beside it)")
    try:
        return pq.read_table(file).to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise ResultsFileError(f"{file}: cannot be read as Parquet ({exc})") from exc


def _validated_summary(file: Path) -> pd.DataFrame:
    df = _read(file)
    missing = [c for c in (*REQUIRED, "schema_version") if c not in df.columns]
    if missing:
        raise ResultsFileError(f"{file}: missing required column(s) {', '.join(missing)}; "
                               f"required: {', '.join(REQUIRED)}, schema_version")
    versions = sorted({int(v) for v in df["schema_version"].dropna()})
    if df["schema_version"].isna().any() or versions not in ([], [SCHEMA_VERSION]):
        shown = ", ".join(map(str, versions)) or "empty"
        raise ResultsFileError(f"{file}: schema_version {shown}, but this code reads version {SCHEMA_VERSION}"
                               " only; re-run the sweep or read it with the matching RepBench version")
    wrong = sorted(set(df["status"].dropna().astype(str)) - set(STATUSES) | (
        {"<empty>"} if df["status"].isna().any() else set()))
    if wrong:
        raise unknown(f"{file}: status", wrong, STATUSES, error=ResultsFileError)
    for column in COLUMNS:
        if column not in df.columns:
            df[column] = None
    extra = [c for c in df.columns if c not in COLUMNS]
    return df[[*COLUMNS, *extra]]


def _validated_samples(file: Path) -> pd.DataFrame:
    df = _read(file)
    missing = [c for c in SAMPLE_COLUMNS if c not in df.columns]
    if missing:
        raise ResultsFileError(f"{file}: missing sample column(s) {', '.join(missing)}; "
                               f"required: {', '.join(SAMPLE_COLUMNS)}")
    return df[list(SAMPLE_COLUMNS)]
