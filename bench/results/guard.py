"""Before a sweep writes into a run folder: refuse what would lose data or end in a traceback.

`RunWriter` rebuilds `summary.parquet`, `summary.csv` and `samples.parquet` from the cell files (or, for a
committed run without `cells/`, adopts them from `summary.parquet`). A folder whose tables cannot be
rebuilt that way (no cell files and no readable `summary.parquet`, yet other result files) would be
measured again from scratch and its old files replaced without a word; a truncated cell file or a
corrupt Parquet would stop the sweep with a raw traceback. `check_run_folder` refuses all of these with
the file named and the way out. So does it refuse, before anything is measured, a folder whose cells
belong to another run (a renamed or copied folder: each new row would be measured, then refused by the
writer) or were measured with other settings (a reused `--run-id` with another seed or thread count
would mix them in one folder).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.results.layout import CELLS_DIR, ENV_FILE, SAMPLES_FILE, SUMMARY_CSV, SUMMARY_FILE
from bench.results.tables import CellFileError, run_tables
from bench.usage import UsageError

WAY_OUT = ("move the folder away (or restore the file, e.g. `git checkout -- {path}`), or pass --run-id NAME "
           "to measure into a new folder")


class RunFolderError(UsageError):
    """The run folder holds files a sweep must not overwrite or cannot read; the message says what to do."""


def read_env_json(run_dir: Path | str) -> dict | None:
    """The run's env.json as a dict, None when absent; a corrupt or empty file is a RunFolderError (it
    would otherwise be kept by a resumed sweep and copied into baselines)."""
    env = Path(run_dir) / ENV_FILE
    if not env.is_file():
        return None
    way_out = "move it away (a resumed sweep then writes a fresh one; a baseline is promoted without it)"
    try:
        data = json.loads(env.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RunFolderError(f"{env}: not valid JSON ({exc}); {way_out}") from None
    if not isinstance(data, dict) or not data:
        raise RunFolderError(f"{env}: holds no environment fingerprint (an empty or non-object JSON value); "
                             f"{way_out}")
    return data


def check_run_folder(run_dir: Path | str, run: tuple[str, str] | None = None,
                     settings: Mapping[str, Any] | None = None) -> None:
    """Raise RunFolderError if a sweep into `run_dir` would overwrite unrebuildable files or cannot read
    it; with `run` = (run_id, hardware), if its cells belong to another run; with `settings` (column ->
    the value this sweep's rows will hold, e.g. seed), if its cells were measured with other values."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return
    read_env_json(run_dir)
    cells = sorted((run_dir / CELLS_DIR).glob("*.json")) if (run_dir / CELLS_DIR).is_dir() else []
    records = []
    for cell in cells:
        try:
            records.append((cell, json.loads(cell.read_bytes())))
            records[-1][1]["row"]["status"]
        except (ValueError, KeyError, TypeError):
            raise RunFolderError(f"{cell}: truncated or not a cell file; move it away and run the same "
                                 "command again (that cell is measured anew)") from None
    _check_cell_values(records)
    rows = [record["row"] for _, record in records] or _table_rows(run_dir)
    if run is not None:
        _check_owner(run_dir, rows, run)
    if settings:
        _check_settings(run_dir, rows, settings)
    summary = run_dir / SUMMARY_FILE
    if cells or summary.is_file():
        return
    orphans = [run_dir / n for n in (SUMMARY_CSV, SAMPLES_FILE) if (run_dir / n).is_file()]
    if orphans:
        raise RunFolderError(
            f"{run_dir}: holds {', '.join(p.name for p in orphans)} but neither {SUMMARY_FILE} nor "
            f"{CELLS_DIR}/, so its rows cannot be rebuilt and a sweep would replace them; "
            + WAY_OUT.format(path=summary))


def _table_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of a run without cell files (a committed run), which a writer adopts; [] without a table."""
    summary = run_dir / SUMMARY_FILE
    if not summary.is_file():
        return []
    try:
        return pq.read_table(summary).to_pylist()
    except (pa.ArrowException, OSError) as exc:
        raise RunFolderError(f"{summary}: cannot be read as Parquet ({exc}); "
                             + WAY_OUT.format(path=summary)) from None


def _check_cell_values(records: list[tuple[Path, dict[str, Any]]]) -> None:
    """Every value fits its column's type (a writer would otherwise stop on a bare Arrow error)."""
    try:
        run_tables(records, [])
    except CellFileError as exc:
        raise RunFolderError(str(exc)) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise RunFolderError(f"a cell file under {records[0][0].parent} is malformed ({type(exc).__name__}: "
                             f"{exc}); move the damaged file away and run the same command again") from None


def _check_owner(run_dir: Path, rows: list[dict[str, Any]], run: tuple[str, str]) -> None:
    owners = Counter((str(row.get("run_id")), str(row.get("hardware"))) for row in rows)
    others = [owner for owner in owners if owner != run]
    if others:
        run_id, hardware = others[0]
        raise RunFolderError(
            f"{run_dir} holds {owners[others[0]]} cell(s) of run '{run_id}' on '{hardware}', not of run "
            f"'{run[0]}' on '{run[1]}' (was the folder renamed or copied?); a sweep would measure and then "
            f"be refused writing them: move it back to {hardware}/{run_id} under the results root and run "
            "the same command there, or pass --run-id NAME to measure into a new folder")


def _check_settings(run_dir: Path, rows: list[dict[str, Any]], settings: Mapping[str, Any]) -> None:
    found = {name: Counter(row.get(name) for row in rows if row.get(name) is not None) for name in settings}
    differ = {name: seen for name, seen in found.items() if set(seen) - {settings[name]}}
    if differ:
        held = "; ".join(f"{name} " + ", ".join(f"{value} ({n} cells)" for value, n in seen.items())
                         for name, seen in differ.items())
        wanted = ", ".join(f"{name} {settings[name]}" for name in differ)
        raise RunFolderError(
            f"{run_dir} holds cells measured with {held}; this sweep would use {wanted}, and one folder "
            "would mix both: pass the folder's settings (--seed, --threads) to resume it, or --run-id NAME "
            "to measure these settings into a new folder")
