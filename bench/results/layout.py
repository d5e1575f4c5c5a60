"""Where results live on disk: `<root>/<hardware>/<run_id>/` for a run (its files are named in
`bench.results.io`), `<root>/<hardware>/traces/<name>/` for profiles, `<root>/parity/<library>-<version>/`
for parity audits of a library's deploy forms (not hardware-specific: they compare numbers, they time
nothing). The sweep, `bench profile`, `bench verify` and the reports build and find these folders here.
Not every reader does yet: `<root>/baselines/` is named in `bench.compare.baseline` and
`bench.models.invariants`, gpucheck, selfbench and the sweep's `env.json` check spell a run's file names
themselves, and the default root is `results/` in the working directory for the commands but
`bench.report.runs.results_root` for notebooks. Moving a folder means those edits too.
"""

from __future__ import annotations

from pathlib import Path

SUMMARY_FILE = "summary.parquet"
TRACES_DIR = "traces"


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
    return Path(root) / "parity" / f"{library}-{version}"


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
