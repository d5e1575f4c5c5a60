"""Finding result runs on disk, for notebooks and reports: `results/<hardware>/<run_id>/summary.parquet`.

The sweep names a run `<preset>-<digest>` (bench.sweep.plan.config.SweepConfig.run_id), so a run's preset is
its id without the last dash-separated part. "Newest" is by the summary file's modification time, which
the writer updates when a sweep ends and, while it runs, at most every `bench.results.io.FLUSH_EVERY_S`
(`RunWriter.flush`): a run still going is as new as its last flush.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.results.layout import SUMMARY_FILE, results_root, run_dirs_under, run_of

RUN_COLUMNS: tuple[str, ...] = ("hardware", "run_id", "preset", "path", "modified")


def preset_of(run_id: str) -> str:
    """'smoke-1a2b3c4d' -> 'smoke' (a run id without a digest is its own preset)."""
    head, sep, tail = run_id.rpartition("-")
    return head if sep and head else run_id


def find_runs(root: Path | None = None) -> pd.DataFrame:
    """Every run under root (a results folder, a hardware folder or one run), newest first."""
    root = Path(root) if root is not None else results_root()
    rows = []
    for run_dir in run_dirs_under(root):
        hardware, run_id = run_of(run_dir)
        rows.append({"hardware": hardware, "run_id": run_id, "preset": preset_of(run_id), "path": run_dir,
                     "modified": (run_dir / SUMMARY_FILE).stat().st_mtime})
    runs = pd.DataFrame(rows, columns=RUN_COLUMNS)
    return runs.sort_values("modified", ascending=False).reset_index(drop=True)


def latest_run(preset: str | None = None, root: Path | None = None,
               hardware: str | None = None) -> Path | None:
    """The newest run of `preset` (any when None), optionally on one hardware; None if there is none."""
    runs = find_runs(root)
    if preset is not None:
        runs = runs[runs["preset"].eq(preset)]
    if hardware is not None:
        runs = runs[runs["hardware"].eq(hardware)]
    return Path(runs["path"].iloc[0]) if len(runs) else None


def newest_of(presets: tuple[str, ...] = (), root: Path | None = None) -> Path | None:
    """The newest run of the first preset in `presets` that has one; with none of them, the newest run."""
    for preset in presets:
        found = latest_run(preset, root)
        if found is not None:
            return found
    return latest_run(None, root)


def load_runs(paths: list[Path]) -> pd.DataFrame:
    """The rows of several runs through bench.results.load (validated), one frame."""
    from bench.results import load

    frames = [load(path) for path in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
