"""Compare two result sets (a baseline and a new run): per-cell verdicts, speedups, memory, correctness.

Method (details and sources in `verdicts`, `speedup` and `stats`):

1. Cells are matched by their AXES. A cell timed in both runs (status ok or mismatch) gets the ratio of
   median latencies r = new / baseline with a 95% percentile-bootstrap interval from the raw samples
   (2000 resamples, fixed seed; each median is resampled exactly through order statistics).
2. Practical threshold t = 5%: slower means r > 1 + t, faster r < 1 / (1 + t).
3. Each cell gets a p-value from one-sided Mann-Whitney tests against the threshold boundary; Benjamini-
   Hochberg at q = 0.05 over all timed cells controls the false discovery rate, so with hundreds of cells
   noise alone rarely produces a SLOWER. SLOWER (FASTER) needs BOTH the interval wholly beyond the
   threshold AND survival of BH; SAME needs the interval wholly inside the band; anything else is
   AMBIGUOUS (listed, never failing). MISSING / NEW: a cell timed on one side only.
4. Deploy/train speedups (within each run, `speedup.pair_values`) are compared the same way.
5. Memory is exact: any change of `peak_allocated_mib` beyond 1 MiB is listed.
6. Correctness: a cell `ok` in the baseline and `mismatch` in the new run is a gate regression.

Timings from different hardware are refused (`HardwareMismatchError`) unless `across_hardware`, which
gives a side-by-side throughput table instead of verdicts. The CI exit code is 1 on any SLOWER cell or gate
regression (optionally also on a smaller speedup, a memory change or a missing cell), else 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from bench.results.derived import throughput
from bench.compare.falsealarm import FalseAlarmEstimate, false_alarm_rate
from bench.results.read import load, load_samples
from bench.results.schema import AXES
from bench.compare.speedup import SMALLER, compare_speedups, speedups_of
from bench.compare.stats import bootstrap_medians
from bench.compare.verdicts import MISSING, NEW, SLOWER, UNTIMED, Settings, medians, timing_verdicts
from bench.usage import UsageError, unknown

TIMED_STATUSES: tuple[str, ...] = ("ok", "mismatch")
CONTEXT_COLUMNS: tuple[str, ...] = ("run_id", "git_sha", "device", "torch_version", "cuda_version",
                                    "cudnn_version")
__all__ = ["Comparison", "FalseAlarmEstimate", "HardwareMismatchError", "RunData", "Settings", "compare",
           "false_alarm_rate", "load_run", "run_data"]


class HardwareMismatchError(UsageError):
    """Timings measured on different hardware cannot be compared cell by cell."""


@dataclass
class RunData:
    """One side of a comparison: one row per cell (AXES unique) and its raw samples, aligned."""

    label: str
    summary: pd.DataFrame
    samples: list[np.ndarray]

    @property
    def hardware(self) -> str:
        return str(self.summary["hardware"].iloc[0])

    def context(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.label, "hardware": self.hardware, "cells": len(self.summary)}
        for column in CONTEXT_COLUMNS:
            values = sorted({str(v) for v in self.summary[column].dropna()})
            out[column] = ", ".join(values) if values else None
        return out


def run_data(summary: pd.DataFrame, samples: pd.DataFrame | None, label: str) -> RunData:
    """Check that `summary` is one hardware with unique cells, and attach each cell's samples."""
    if summary.empty:
        raise UsageError(f"{label}: holds no result rows")
    hardware = sorted(summary["hardware"].astype(str).unique())
    if len(hardware) > 1:
        raise UsageError(f"{label}: mixes hardware {', '.join(hardware)}; pass one run folder or baseline")
    summary = summary.copy()
    for axis in ("batch_size", "resolution"):
        summary[axis] = summary[axis].astype(int)
    dup = summary[summary.duplicated(list(AXES), keep=False)]
    if not dup.empty:
        runs = ", ".join(sorted(dup["run_id"].astype(str).unique()))
        raise UsageError(f"{label}: {len(dup)} rows measure the same cells (runs {runs}); pass one run folder")
    summary = summary.sort_values(list(AXES), kind="stable").reset_index(drop=True)
    arrays = _sample_arrays(summary, samples)
    _check_timings(summary, arrays, label)
    return RunData(label, summary, arrays)


SHOWN_CELLS = 3
POSITIVE_IF_PRESENT: tuple[str, ...] = ("latency_ms_median_ci_low", "latency_ms_median_ci_high", "speedup_median",
                                        "speedup_ci_low", "speedup_ci_high")
"""Columns an ok row may leave empty, but must not hold as zero, negative, infinite or reversed values."""


def _timing_problem(row: pd.Series, samples: np.ndarray) -> str | None:
    """Why an ok row's timing cannot be compared, or None: a comparison would otherwise pass on a cell
    with nothing measured (no median and no samples) or read an infinite speedup as a gain."""
    median = pd.to_numeric(row.get("latency_ms_median"), errors="coerce")
    if not (np.isfinite(median) and median > 0):
        return f"latency_ms_median is {median!r} (needs a finite value > 0)"
    if len(samples) and not (np.isfinite(samples).all() and (samples > 0).all()):
        return "its raw samples hold values that are not finite and > 0"
    values = {c: pd.to_numeric(row.get(c), errors="coerce") for c in POSITIVE_IF_PRESENT}
    bad = [f"{c} = {v!r}" for c, v in values.items() if pd.notna(v) and not (np.isfinite(v) and v > 0)]
    if bad:
        return f"{', '.join(bad)} (needs a finite value > 0 or none)"
    intervals = (("latency_ms_median_ci_low", "latency_ms_median_ci_high"), ("speedup_ci_low", "speedup_ci_high"))
    for low, high in intervals:
        if pd.notna(values[low]) != pd.notna(values[high]) or values[low] > values[high]:
            return f"its interval {low} {values[low]!r} .. {high} {values[high]!r} is not an interval"
    return None


def _check_timings(summary: pd.DataFrame, samples: list[np.ndarray], label: str) -> None:
    """Every ok row carries finite, positive timings (`_timing_problem`); ValueError naming the cells."""
    problems = [f"{' '.join(str(row[a]) for a in AXES)}: {why}"
                for (_, row), values in zip(summary.iterrows(), samples)
                if row["status"] == "ok" and (why := _timing_problem(row, values)) is not None]
    if problems:
        shown = "; ".join(problems[:SHOWN_CELLS]) + ("; ..." if len(problems) > SHOWN_CELLS else "")
        raise UsageError(f"{label}: {len(problems)} ok row(s) carry no usable timing ({shown}); their files "
                         "were damaged or written by something else: restore them, or measure those cells again "
                         "in a new run (bench run --run-id NAME)")


def _sample_arrays(summary: pd.DataFrame, samples: pd.DataFrame | None) -> list[np.ndarray]:
    empty = np.zeros(0)
    if samples is None or samples.empty:
        return [empty] * len(summary)
    keys = ["run_id", *AXES]
    samples = samples.astype({"batch_size": int, "resolution": int}).sort_values(
        [*keys, "sample_index"], kind="stable")
    groups = samples.groupby(keys, sort=False).indices
    values = samples["latency_ms"].to_numpy(float)
    out = []
    for row in summary[keys].itertuples(index=False, name=None):
        index = groups.get(tuple(row))
        out.append(values[index] if index is not None else empty)
    return out


def load_run(path: Path | str) -> RunData:
    """A run folder, a hardware folder with one run per cell, or a baseline parquet, with samples."""
    return run_data(load(path), load_samples(path), str(path))


@dataclass
class Comparison:
    """Everything `bench compare` reports; rendering lives in `bench.compare.render`."""

    settings: Settings
    baseline: dict[str, Any]
    new: dict[str, Any]
    across_hardware: bool
    cells: pd.DataFrame
    speedups: pd.DataFrame
    memory: pd.DataFrame
    gates: pd.DataFrame
    hardware: pd.DataFrame | None = None
    fail_on: tuple[str, ...] = field(default=())

    def counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.cells["verdict"].value_counts().items()}

    def gate_regressions(self) -> pd.DataFrame:
        return self.gates[self.gates["change"].eq("regression")]

    def failures(self) -> list[str]:
        """Why the comparison fails (empty = pass). `fail_on` may add 'speedup', 'memory', 'missing'."""
        out = []
        if len(self.gate_regressions()):
            out.append(f"{len(self.gate_regressions())} correctness gate regression(s) (ok -> mismatch)")
        if self.across_hardware:
            return out
        slower = int(self.cells["verdict"].eq(SLOWER).sum())
        if slower:
            out.append(f"{slower} cell(s) SLOWER")
        extra = {"speedup": (self.speedups["verdict"].eq(SMALLER).sum(), "speedup(s) SMALLER"),
                 "memory": (len(self.memory), "memory change(s)"),
                 "missing": (self.cells["verdict"].eq(MISSING).sum(), "cell(s) MISSING")}
        for name in self.fail_on:
            count, what = extra[name]
            if count:
                out.append(f"{int(count)} {what}")
        return out

    def exit_code(self) -> int:
        return 1 if self.failures() else 0


FAIL_ON_CHOICES: tuple[str, ...] = ("speedup", "memory", "missing")


def _gpu_memory_ids(a: str, b: str) -> Optional[tuple[str, str]]:
    """(GiB id, marketed id) where two GPU ids differ only in a nearby memory size ('nvidia-h200-140gb' vs
    'nvidia-h200-141gb'): the older form rounded the GiB the card reports, the newer names the size it is
    sold with (bench.measure.env.gpu_slug)."""
    pattern = re.compile(r"^(.*)-(\d+)gb$")
    ma, mb = pattern.match(a), pattern.match(b)
    if not (ma and mb) or ma.group(1) != mb.group(1) or a == b:
        return None
    sizes = sorted((int(ma.group(2)), int(mb.group(2))))
    return (a, b) if sizes[1] - sizes[0] <= 0.1 * sizes[1] else None


def legacy_id_note(a: str, b: str) -> str:
    """When one hardware id extends the other ('amd-epyc' vs 'amd-epyc-f25m1-2c'), the shorter is an id of
    the older form, which held only the device name; when two GPU ids differ only in a nearby memory size,
    one rounded the reported GiB and the other names the marketed size. Say so: they may be one machine."""
    if _gpu_memory_ids(a, b):
        return (f". Note: '{a}' and '{b}' may be one GPU: older ids rounded the memory the card reports "
                "(GiB), ids now carry the size the card is sold with (an H200 reports 140.4 GiB of its 141 "
                "GB). If both runs come from the same machine, compare --speedups-only, or promote a new "
                "baseline (bench baseline update)")
    if a == b or not (b.startswith(a + "-") or a.startswith(b + "-")):
        return ""
    old, new = sorted((a, b), key=len)
    return (f". Note: '{old}' is a hardware id of the older form (the device name only); ids now add what "
            f"changes timings (CPU family/model and usable CPU count; GPU memory), as in '{new}'. If both "
            "runs come from the same machine, promote a new baseline (bench baseline update) or compare "
            "--speedups-only, which may cross machines")


def check_fail_on(fail_on: tuple[str, ...]) -> tuple[str, ...]:
    """`fail_on` if every entry is one of FAIL_ON_CHOICES; `bench compare` checks it before reading a run."""
    wrong = [f for f in fail_on if f not in FAIL_ON_CHOICES]
    if wrong:
        raise unknown("fail_on", wrong, FAIL_ON_CHOICES)
    return fail_on


def compare(base: RunData, new: RunData, settings: Settings | None = None, across_hardware: bool = False,
            fail_on: tuple[str, ...] = ()) -> Comparison:
    """Compare two runs; raises HardwareMismatchError for different hardware unless `across_hardware`."""
    settings = settings or Settings()
    check_fail_on(fail_on)
    across = base.hardware != new.hardware
    if across and not across_hardware:
        raise HardwareMismatchError(
            f"baseline {base.label} was measured on '{base.hardware}' and new run {new.label} on "
            f"'{new.hardware}'; timings from different hardware are not comparable cell by cell. Compare with "
            f"results/baselines/{new.hardware}.parquet, or pass --across-hardware for a side-by-side "
            "throughput table" + legacy_id_note(base.hardware, new.hardware))
    rng = np.random.default_rng(settings.seed)
    boot_base = _bootstrap(base, settings, rng)
    boot_new = _bootstrap(new, settings, rng)
    cells = _cells(base, new, boot_base, boot_new, settings)
    speedups = compare_speedups(speedups_of(base.summary, boot_base), speedups_of(new.summary, boot_new),
                                settings)
    memory = _memory(cells.iloc[0:0] if across else cells, settings)
    return Comparison(settings=settings, baseline=base.context(), new=new.context(), across_hardware=across,
                      cells=cells, speedups=speedups, memory=memory, gates=_gates(cells),
                      hardware=_hardware_table(cells) if across else None, fail_on=tuple(fail_on))


def _bootstrap(run: RunData, settings: Settings, rng: np.random.Generator) -> np.ndarray:
    timed = run.summary["status"].isin(TIMED_STATUSES).to_numpy()
    samples = [s if ok else np.zeros(0) for s, ok in zip(run.samples, timed)]
    return bootstrap_medians(samples, settings.n_boot, rng)


def _medians(run: RunData) -> np.ndarray:
    """Median latency per cell from its raw samples, else the summary's `latency_ms_median`."""
    from_samples = medians(run.samples)
    summary = pd.to_numeric(run.summary["latency_ms_median"]).to_numpy(float)
    return np.where(np.isnan(from_samples), summary, from_samples)


def _side(run: RunData) -> pd.DataFrame:
    s = run.summary
    timed = s["status"].isin(TIMED_STATUSES)
    return pd.DataFrame({
        **{a: s[a] for a in AXES}, "status": s["status"], "error": s["error"], "median_ms": _medians(run),
        "n": [len(x) for x in run.samples], "peak_allocated_mib": pd.to_numeric(s["peak_allocated_mib"]),
        "max_abs_err": pd.to_numeric(s["max_abs_err"]), "tolerance": pd.to_numeric(s["tolerance"]),
        "timed": timed, "col": np.arange(len(s)),
    })


def _cells(base: RunData, new: RunData, boot_base: np.ndarray, boot_new: np.ndarray,
           settings: Settings) -> pd.DataFrame:
    merged = _side(base).merge(_side(new), on=list(AXES), how="outer", suffixes=("_base", "_new"), sort=True)
    merged["timed_base"] = merged["timed_base"].fillna(False).astype(bool)
    merged["timed_new"] = merged["timed_new"].fillna(False).astype(bool)
    for name in ("ratio", "ci_lo", "ci_hi", "p_value", "q_value"):
        merged[name] = np.nan
    merged["verdict"], merged["note"] = _presence(merged)
    both = (merged["timed_base"] & merged["timed_new"]).to_numpy()
    cb = merged.loc[both, "col_base"].to_numpy(int)
    cn = merged.loc[both, "col_new"].to_numpy(int)
    with np.errstate(divide="ignore", invalid="ignore"):
        fallback = (merged.loc[both, "median_ms_new"] / merged.loc[both, "median_ms_base"]).to_numpy(float)
        replicates = boot_new[:, cn] / boot_base[:, cb]
    v = timing_verdicts([base.samples[i] for i in cb], [new.samples[i] for i in cn], settings,
                        replicates=replicates, fallback_ratio=fallback)
    for name in ("ratio", "ci_lo", "ci_hi", "p_value", "q_value", "verdict", "note"):
        merged.loc[both, name] = getattr(v, name)
    return merged.drop(columns=["timed_base", "timed_new", "col_base", "col_new"]).reset_index(drop=True)


def _presence(merged: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Verdict and note of cells not timed on both sides (the rest are overwritten by the statistics)."""
    verdicts, notes = [], []
    for row in merged.itertuples(index=False):
        in_base, in_new = isinstance(row.status_base, str), isinstance(row.status_new, str)
        if not in_new:
            verdicts.append(MISSING)
            notes.append("not in the new run")
        elif not in_base:
            verdicts.append(NEW)
            notes.append("not in the baseline")
        elif row.timed_base and not row.timed_new:
            verdicts.append(MISSING)
            notes.append(f"new status {row.status_new}: {_short(row.error_new)}")
        elif row.timed_new and not row.timed_base:
            verdicts.append(NEW)
            notes.append(f"baseline status {row.status_base}")
        else:
            verdicts.append(UNTIMED if not row.timed_base else "")
            notes.append(f"status {row.status_base} -> {row.status_new}" if not row.timed_base else "")
    return verdicts, notes


def _short(text: Any, limit: int = 80) -> str:
    text = "" if text is None or (isinstance(text, float) and np.isnan(text)) else str(text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _memory(cells: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Cells whose peak allocated memory moved by more than the tolerance (1 MiB): exact, no statistics."""
    delta = cells["peak_allocated_mib_new"] - cells["peak_allocated_mib_base"]
    changed = cells[delta.abs() > settings.memory_tolerance_mib]
    out = changed[[*AXES, "peak_allocated_mib_base", "peak_allocated_mib_new"]].copy()
    out["delta_mib"] = out["peak_allocated_mib_new"] - out["peak_allocated_mib_base"]
    return out.reset_index(drop=True)


def _gates(cells: pd.DataFrame) -> pd.DataFrame:
    """Correctness gate changes: regression (ok -> mismatch), fixed (mismatch -> ok), still mismatch."""
    kinds = {("ok", "mismatch"): "regression", ("mismatch", "ok"): "fixed", ("mismatch", "mismatch"): "still"}
    pair = list(zip(cells["status_base"], cells["status_new"]))
    change = pd.Series([kinds.get(p) for p in pair], index=cells.index, dtype=object)
    rows = cells[change.notna()].assign(change=change[change.notna()])
    cols = [*AXES, "change", "max_abs_err_base", "max_abs_err_new", "tolerance_new"]
    return rows[cols].reset_index(drop=True)


def _hardware_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Throughput (`derived.throughput` of the median) on each hardware and their ratio new / baseline."""
    timed = cells[cells["median_ms_base"].notna() & cells["median_ms_new"].notna()].copy()
    batch = timed["batch_size"].astype(float)
    timed["throughput_base"] = throughput(batch, timed["median_ms_base"].astype(float))
    timed["throughput_new"] = throughput(batch, timed["median_ms_new"].astype(float))
    timed["throughput_ratio"] = 1.0 / timed["ratio"]
    timed["throughput_ratio_lo"] = 1.0 / timed["ci_hi"]
    timed["throughput_ratio_hi"] = 1.0 / timed["ci_lo"]
    cols = [*AXES, "status_base", "status_new", "throughput_base", "throughput_new", "throughput_ratio",
            "throughput_ratio_lo", "throughput_ratio_hi"]
    return timed[cols].reset_index(drop=True)
