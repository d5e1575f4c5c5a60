"""Where results live on disk, in one place: the root (`results_root`), `<root>/<hardware>/<run_id>/` for
a run and the names of its files, `<root>/<hardware>/traces/<name>/` for profiles, `<root>/baselines/`
for baselines, `<root>/parity/<library>-<version>/` for parity audits of a library's deploy forms (not
hardware-specific: they compare numbers, they time nothing). Writers and readers take their folder and
file names from here, so moving a folder or renaming a file is one edit.
"""

from __future__ import annotations

import os
from pathlib import Path

RESULTS_ENV_VAR = "REPBENCH_RESULTS"

SUMMARY_FILE = "summary.parquet"
SUMMARY_CSV = "summary.csv"
SAMPLES_FILE = "samples.parquet"
SPEEDUPS_FILE = "speedups.parquet"
SPEEDUPS_CSV = "speedups.csv"
ENV_FILE = "env.json"
PAIRS_DIR = "pairs"
"""A run's per-pair files (raw paired samples)."""
CELLS_DIR = "cells"
"""A run's per-cell files, from which its tables are rebuilt (`bench.results.tables`)."""
TRACES_DIR = "traces"
BASELINES_DIR = "baselines"
PARITY_DIR = "parity"
SAMPLES_SUFFIX = ".samples.parquet"
"""A baseline's raw samples: `<hardware>.parquet` -> `<hardware>.samples.parquet`."""


ROOT_DEFAULT_HELP = "$REPBENCH_RESULTS, else the source checkout's results/, else ./results"
"""How `--help` states `results_root` as a default."""


def results_root() -> Path:
    """The one default results root of every command: $REPBENCH_RESULTS when set; else the checkout's
    `results/` when the package runs from a source checkout (a `pyproject.toml` beside the package); else
    `results/` in the working directory (an installed package must never write inside site-packages)."""
    value = os.environ.get(RESULTS_ENV_VAR)
    if value:
        return Path(value)
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "bench").is_dir():
        return checkout / "results"
    return Path.cwd() / "results"


def baselines_dir(root: Path | str) -> Path:
    """`<root>/baselines/`: the promoted runs `bench compare` checks against, and CI's expectations."""
    return Path(root) / BASELINES_DIR


def hardware_dir(root: Path | str, hardware: str) -> Path:
    """`<root>/<hardware>/`: every run and trace of one machine."""
    return Path(root) / hardware


def run_dir_for(root: Path | str, hardware: str, run_id: str) -> Path:
    """`<root>/<hardware>/<run_id>/`, the folder of one run."""
    return hardware_dir(root, hardware) / run_id


def traces_dir(root: Path | str, hardware: str, name: str) -> Path:
    """`<root>/<hardware>/traces/<name>/`, where `bench profile` writes one cell's trace."""
    return hardware_dir(root, hardware) / TRACES_DIR / name


def parity_dir(root: Path | str, library: str, version: str) -> Path:
    """`<root>/parity/<library>-<version>/`, where `bench verify` writes a parity audit."""
    return Path(root) / PARITY_DIR / f"{library}-{version}"


def run_of(run_dir: Path) -> tuple[str, str]:
    """(hardware, run_id) of a run folder laid out by `run_dir_for`."""
    return run_dir.parent.name, run_dir.name


def run_dirs_under(path: Path) -> list[Path]:
    """The run folders at `path`: itself (a run), its children (a hardware folder) or grandchildren (a
    results root)."""
    return sorted({file.parent for pattern in (SUMMARY_FILE, f"*/{SUMMARY_FILE}", f"*/*/{SUMMARY_FILE}")
                   for file in Path(path).glob(pattern)})


def hardware_dirs_of(paths: list[Path]) -> list[Path]:
    """The `<root>/<hardware>/` folders the given runs, hardware folders or roots belong to (where the
    traces of their profiles live)."""
    found: list[Path] = []
    for run in (r for path in paths for r in run_dirs_under(path)):
        hardware = run.parent.resolve()
        if hardware not in found:
            found.append(hardware)
    return found
