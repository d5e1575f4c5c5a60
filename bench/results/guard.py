"""Before a sweep writes into a run folder: refuse what would lose data or end in a traceback.

`RunWriter` rebuilds `summary.parquet`, `summary.csv` and `samples.parquet` from the cell files (or, for a
committed run without `cells/`, adopts them from `summary.parquet`). A folder whose tables cannot be
rebuilt that way (no cell files and no readable `summary.parquet`, yet other result files) would be
measured again from scratch and its old files replaced without a word; a truncated cell file or a
corrupt Parquet would stop the sweep with a raw traceback. `check_run_folder` refuses all of these with
the file named and the way out.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench.results.io import CELLS_DIR, ENV_JSON, SAMPLES_PARQUET, SUMMARY_CSV, SUMMARY_PARQUET

WAY_OUT = ("move the folder away (or restore the file, e.g. `git checkout -- {path}`), or pass --run-id NAME "
           "to measure into a new folder")


class RunFolderError(ValueError):
    """The run folder holds files a sweep must not overwrite or cannot read; the message says what to do."""


def read_env_json(run_dir: Path | str) -> dict | None:
    """The run's env.json as a dict, None when absent; a corrupt or empty file is a RunFolderError (it
    would otherwise be kept by a resumed sweep and copied into baselines)."""
    env = Path(run_dir) / ENV_JSON
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


def check_run_folder(run_dir: Path | str) -> None:
    """Raise RunFolderError if a sweep into `run_dir` would overwrite unrebuildable files or cannot read it."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return
    read_env_json(run_dir)
    cells = sorted((run_dir / CELLS_DIR).glob("*.json")) if (run_dir / CELLS_DIR).is_dir() else []
    for cell in cells:
        try:
            json.loads(cell.read_bytes())["row"]
        except (ValueError, KeyError, TypeError):
            raise RunFolderError(f"{cell}: truncated or not a cell file; move it away and run the same "
                                 "command again (that cell is measured anew)") from None
    if cells:
        return
    summary = run_dir / SUMMARY_PARQUET
    if summary.is_file():
        try:
            pq.read_metadata(summary)
        except (pa.ArrowException, OSError) as exc:
            raise RunFolderError(f"{summary}: cannot be read as Parquet ({exc}); "
                                 + WAY_OUT.format(path=summary)) from None
        return
    orphans = [run_dir / n for n in (SUMMARY_CSV, SAMPLES_PARQUET) if (run_dir / n).is_file()]
    if orphans:
        raise RunFolderError(
            f"{run_dir}: holds {', '.join(p.name for p in orphans)} but neither {SUMMARY_PARQUET} nor "
            f"{CELLS_DIR}/, so its rows cannot be rebuilt and a sweep would replace them; "
            + WAY_OUT.format(path=summary))
