"""`bench baseline update RUN_DIR` / `bench baseline show`: the regression baseline of each hardware.

A baseline is a copy of one run, kept where CI finds it by hardware slug:

- `results/baselines/<hardware>.parquet`: the run's summary rows (same columns as `summary.parquet`);
- `results/baselines/<hardware>.samples.parquet`: its raw samples (same columns as `samples.parquet`),
  which the bootstrap intervals of `bench compare` need;
- `results/baselines/<hardware>.env.json`: the run's environment fingerprint, when it has one.

Two files rather than a list column keep both readable by the same code as a run folder
(`bench.results.load` / `load_samples` take the `.parquet` path). Samples are written before the summary,
each atomically, so a baseline never has summary rows without their samples.

The other file there, `cpu_invariants.json`, is not a run: it holds the deterministic per-model counts
that `bench invariants` (`bench.models.invariants`) checks.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa

from bench.results.noise import noisy_mask, noisy_reason
from bench.results.guard import read_env_json
from bench.results.io import atomic_write, atomic_write_table
from bench.results import layout
from bench.results.layout import ENV_FILE, SAMPLES_SUFFIX, baselines_dir
from bench.results.read import ResultsFileError, behind_note, load, load_samples
from bench.results.runlock import holder
from bench.results.schema import COLUMNS, SAMPLE_COLUMNS
from bench.results.tables import samples_schema, summary_schema
from bench.usage import UsageError


def baseline_path(results_root: Path | str, hardware: str) -> Path:
    """`<results_root>/baselines/<hardware>.parquet`."""
    return baselines_dir(results_root) / f"{hardware}.parquet"


class BaselineRefused(UsageError):
    """The run would make a misleading baseline (failed or noisy cells) and --force was not given."""


def unfit_cells(summary: pd.DataFrame) -> list[str]:
    """Why each cell of a run should not become a regression baseline: a failed status (mismatch, error,
    timeout) or a timing that judged itself noisy (`bench.results.noise`)."""
    failed = summary["status"].isin(("mismatch", "error", "timeout"))
    noisy = noisy_mask(summary) & summary["status"].eq("ok")
    out = []
    for row, is_failed in zip(summary[failed | noisy].itertuples(index=False), failed[failed | noisy]):
        why = row.status if is_failed else noisy_reason(row)
        out.append(f"{row.model} {row.form} b{row.batch_size} {row.precision} {row.runtime} "
                   f"{row.resolution}px: {why}")
    return out


def promote(run_dir: Path | str, results_root: Path | str | None = None, force: bool = False) -> Path:
    """Copy one run (summary, samples, env) to the baseline of its hardware; returns the summary path.

    A run with failed or noisy cells is refused (BaselineRefused, listing them) unless `force`.
    """
    run_dir = Path(run_dir)
    results_root = layout.results_root() if results_root is None else results_root
    sweeping = holder(run_dir)
    if sweeping:
        raise BaselineRefused(f"{run_dir} is being swept (pid {sweeping}), so its rows are not final; run "
                              "baseline update when the sweep has finished")
    summary = load(run_dir)
    if summary.empty:
        raise UsageError(f"{run_dir}: holds no result rows; a baseline needs a measured run")
    runs = sorted(summary["run_id"].astype(str).unique())
    hardware = sorted(summary["hardware"].astype(str).unique())
    if len(runs) != 1 or len(hardware) != 1:
        raise UsageError(f"{run_dir}: holds {len(runs)} run(s) ({', '.join(runs)}) on {', '.join(hardware)}; "
                         "a baseline is one run: pass results/<hardware>/<run_id>")
    if not summary["status"].eq("ok").any():
        raise UsageError(f"{run_dir}: no cell has status ok; a baseline needs measured cells")
    unfit = unfit_cells(summary)
    if unfit and not force:
        shown = "\n  ".join(unfit[:20]) + (f"\n  ... {len(unfit) - 20} more" if len(unfit) > 20 else "")
        raise BaselineRefused(
            f"{run_dir}: {len(unfit)} of {len(summary)} cells would be promoted failed or noisy:\n  {shown}\n"
            "re-run them (bench run ... --retry-failed, on a quieter machine) or pass --force to promote "
            "the run as it is")
    read_env_json(run_dir)
    samples = load_samples(run_dir)
    target = baseline_path(results_root, hardware[0])
    target.parent.mkdir(parents=True, exist_ok=True)
    samples_table = pa.Table.from_pandas(samples[list(SAMPLE_COLUMNS)], schema=samples_schema(),
                                         preserve_index=False)
    summary_table = pa.Table.from_pandas(summary[list(COLUMNS)], schema=summary_schema(), preserve_index=False)
    atomic_write_table(target.with_name(f"{hardware[0]}{SAMPLES_SUFFIX}"), samples_table)
    atomic_write_table(target, summary_table)
    env = run_dir / ENV_FILE
    if env.is_file():
        atomic_write(target.with_name(f"{hardware[0]}.env.json"), lambda tmp: shutil.copyfile(env, tmp))
    return target


def describe(path: Path) -> dict[str, str]:
    """One line of `bench baseline show`: hardware, run, git sha, cells by status, when it was measured."""
    df = load(path)
    counts = df["status"].value_counts()
    started = df["started_at"].dropna().astype(str)
    return {"hardware": path.name.removesuffix(".parquet"),
            "run_id": ", ".join(sorted(df["run_id"].astype(str).unique())),
            "git_sha": ", ".join(sorted(df["git_sha"].dropna().astype(str).unique())) or "-",
            "cells": str(len(df)), "status": ", ".join(f"{k} {v}" for k, v in counts.items()),
            "measured": f"{started.min()} .. {started.max()}" if len(started) else "-", "file": str(path)}


def baselines(results_root: Path | str) -> list[Path]:
    folder = baselines_dir(results_root)
    return sorted(p for p in folder.glob("*.parquet") if not p.name.endswith(SAMPLES_SUFFIX))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    update = sub.add_parser("update", help="promote a run to results/baselines/<hardware>.parquet")
    update.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="results/<hardware>/<run_id>")
    update.add_argument("--results-root", type=Path, default=layout.results_root(),
                        help=f"folder holding baselines/ (default: {layout.ROOT_DEFAULT_HELP})")
    update.add_argument("--force", action="store_true",
                        help="promote a run even if cells failed (mismatch, error, timeout) or are noisy")
    show = sub.add_parser("show", help="list the baselines and the runs they come from")
    show.add_argument("hardware", nargs="?", default=None, help="only this hardware slug")
    show.add_argument("--results-root", type=Path, default=layout.results_root(),
                      help=f"folder holding baselines/ (default: {layout.ROOT_DEFAULT_HELP})")


def run(args: argparse.Namespace) -> int:
    try:
        return _update(args) if args.action == "update" else _show(args)
    except OSError as exc:  # a read-only or full results root: say where, not a traceback
        where = exc.filename or baselines_dir(args.results_root)
        print(f"bench baseline {args.action}: cannot write {where}: {exc.strerror or exc}; make "
              f"{baselines_dir(args.results_root)} writable or pass --results-root DIR", file=sys.stderr)
        return 2


def _previous(old: Path | None, force: bool) -> str | None:
    """'run <id>' the current baseline holds (for the message), None if there is none. An unreadable one
    is refused without --force (it may be worth a look) and replaced with it."""
    if old is None or not old.is_file():
        return None
    try:
        return f"run {describe(old)['run_id']}"
    except ResultsFileError as exc:
        if not force:
            raise BaselineRefused(f"the current baseline is unreadable: {exc}; delete {old} (and "
                                  f"{old.name.removesuffix('.parquet')}{SAMPLES_SUFFIX} beside it), or pass "
                                  "--force, which replaces it") from exc
        return f"an unreadable baseline ({old.name})"


def _update(args: argparse.Namespace) -> int:
    note = None if holder(args.run_dir) else behind_note(args.run_dir)
    if note:
        print(f"bench baseline update: note: {note}", file=sys.stderr)
    hardware = sorted(load(args.run_dir)["hardware"].astype(str).unique())
    old = baseline_path(args.results_root, hardware[0]) if len(hardware) == 1 else None
    previous = _previous(old, args.force)
    target = promote(args.run_dir, args.results_root, force=args.force)
    info = describe(target)
    replaced = f"; replaced {previous}" if previous else ""
    print(f"baseline {target}: run {info['run_id']} ({info['cells']} cells: {info['status']}){replaced}")
    return 0


def _show(args: argparse.Namespace) -> int:
    paths = baselines(args.results_root)
    if args.hardware:
        paths = [p for p in paths if p.name == f"{args.hardware}.parquet"]
    if not paths:
        known = ", ".join(p.name.removesuffix(".parquet") for p in baselines(args.results_root)) or "none"
        print(f"bench baseline show: no baseline{' for ' + args.hardware if args.hardware else ''} under "
              f"{baselines_dir(args.results_root)}; known: {known}", file=sys.stderr)
        return 1
    rows = pd.DataFrame([describe(p) for p in paths])
    print(rows.to_string(index=False))
    return 0
