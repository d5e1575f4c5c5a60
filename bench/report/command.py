"""`bench report RUN_DIR [RUN_DIR ...] [--out DIR]`: figures, tables and report.md for result folders.

Each RUN_DIR may be one run (`results/<hardware>/<run_id>`), a hardware folder or all of `results/`
(anything `bench.results.load` reads). Runs from several hardware add the hardware comparison.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from bench.report.document import write_report
from bench.report.registry import figure_names
from bench.results.layout import hardware_dirs_of, run_dirs_under
from bench.usage import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="run folder(s) results/<hardware>/<run_id>, a hardware folder, or results/")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: <first RUN_DIR>/report/)")


def load_all(paths: list[Path]) -> pd.DataFrame:
    """All rows of all paths through bench.results.load (which validates the schema); a note on stderr
    for each run whose tables are behind its cell files (those rows are read from the cell files)."""
    from bench.results.read import behind_note, load

    for note in filter(None, (behind_note(run) for path in paths for run in run_dirs_under(path))):
        print(f"bench report: note: {note}", file=sys.stderr)
    frames = [load(path) for path in paths]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def run(args: argparse.Namespace) -> int:
    missing = [str(p) for p in args.run_dirs if not p.exists()]
    if missing:
        raise UsageError(f"{', '.join(missing)} does not exist; pass results/<hardware>/<run_id>, "
                         "a hardware folder or results/")
    df = load_all(list(args.run_dirs))  # a file that does not follow the schema: ResultsFileError, a UsageError
    if df.empty:
        print(f"bench report: no result rows under {', '.join(map(str, args.run_dirs))}", file=sys.stderr)
        return 1
    out = args.out if args.out is not None else args.run_dirs[0] / "report"
    try:
        output = write_report(df, out, hardware_dirs_of(list(args.run_dirs)))
    except OSError as exc:  # a read-only run folder, a full disk
        print(f"bench report: cannot write the report into {out}: {exc.strerror or exc}; pass --out DIR "
              "(the results themselves are only read)", file=sys.stderr)
        return 2
    _print_summary(output, out)
    return 0


def _print_summary(output, out: Path) -> None:
    reports = [output, *output.sub_reports.values()]
    drawn = sum(len(r.rendered.paths) for r in reports)
    skipped = {name: reason for r in reports for name, reason in r.rendered.skipped.items()}
    print(f"report: {output.report_md}")
    pages = f" over {len(reports)} report pages" if len(reports) > 1 else ""
    print(f"figures: {drawn} drawn{pages} (each page draws up to {len(figure_names())} kinds), in {out}")
    for name, reason in skipped.items():
        print(f"  not drawn: {name}: {reason}")
