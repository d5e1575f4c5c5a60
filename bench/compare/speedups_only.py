"""`bench compare --speedups-only`: compare the deploy/train speedups of two runs, across hardware too.

speedup = train latency / deploy latency of one configuration inside one run (the median of its paired
block ratios, see `bench.compare.speedup`). Both forms ran back to back on one machine, so the ratio
cancels most of what differs between machines (clock, memory bandwidth, core count), and, unlike cell
timings, it may be compared between a committed baseline and a CI machine of another kind. It does not
cancel everything (a CPU with other vector units favours some kernels), so the threshold t given should be
generous.

Verdicts per configuration, change = speedup_new / speedup_base:

- SMALLER: the change's 95% bootstrap interval lies wholly below 1 / (1 + t) and survives
  Benjamini-Hochberg (`speedup.compare_speedups`); t = 2/3 flags a speedup that fell by more than 40%.
- LOST: the deploy form is no longer faster: the baseline's speedup interval lay wholly above
  1 + LOST_MARGIN and the new one lies wholly below it. Checked before SMALLER, so a 1.35x speedup that
  drops to 1.0x fails even where a 40% threshold would not.
- MISSING: the baseline has an ok train/deploy pair and the new run does not (a cell failed, timed out,
  mismatched, or was not run).
- SAME / LARGER / AMBIGUOUS / NEW: reported, never failing.

The comparison fails (exit 1) on any SMALLER, LOST or MISSING pair and on a correctness gate regression
(a cell `ok` in the baseline and `mismatch` in the new run).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Callable

import numpy as np
import pandas as pd

from bench.compare.comparison import Comparison, RunData, compare
from bench.compare.render import fmt_interval, fmt_num, fmt_pct, fmt_speedup, varying
from bench.results.table_writer import table
from bench.compare.speedup import LARGER, PAIR_AXES, SMALLER, interval_note
from bench.compare.verdicts import AMBIGUOUS, MISSING, NEW, SAME, Settings

LOST = "LOST"
LOST_MARGIN = 0.05
"""Deploy counts as faster than train when its speedup interval lies wholly above 1 + LOST_MARGIN (the
default practical threshold of `bench compare`), and as no longer faster when it lies wholly below it."""
SPEEDUP_VERDICTS: tuple[str, ...] = (LOST, SMALLER, MISSING, AMBIGUOUS, LARGER, SAME, NEW)
FAILING: tuple[str, ...] = (LOST, SMALLER, MISSING)


class SpeedupComparison(Comparison):
    """The speedup view of a `Comparison`: the same context and gates, its speedups with LOST marked, and
    verdicts that read only the speedups (cell timings of two machines are not compared)."""

    def counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.speedups["verdict"].value_counts().items()}

    def failures(self) -> list[str]:
        """Why the comparison fails; empty means pass."""
        counts = self.counts()
        out = [f"{counts[v]} speedup(s) {v}" for v in FAILING if counts.get(v)]
        regressions = int(self.gates["change"].eq("regression").sum())
        if regressions:
            out.append(f"{regressions} correctness gate regression(s) (ok -> mismatch)")
        return out

    def exit_code(self) -> int:
        return 1 if self.failures() else 0


def mark_lost(speedups: pd.DataFrame, margin: float = LOST_MARGIN) -> pd.DataFrame:
    """Set verdict LOST where the deploy form was clearly faster in the baseline and is not any more."""
    out = speedups.copy()
    limit = 1.0 + margin
    lost = (out["speedup_lo_base"] > limit) & (out["speedup_hi_new"] < limit)
    out.loc[lost, "verdict"] = LOST
    out.loc[lost, "note"] = [f"deploy no longer faster than train by {margin:.0%}: speedup "
                             f"{b:.2f}x -> {n:.2f}x" for b, n in zip(out.loc[lost, "speedup_base"],
                                                                     out.loc[lost, "speedup_new"])]
    return out


def compare_speedups_only(base: RunData, new: RunData, settings: Settings | None = None) -> SpeedupComparison:
    """Speedup verdicts of two runs on any hardware (cell timings are not compared)."""
    settings = settings or Settings()
    full = compare(base, new, settings, across_hardware=True)
    return SpeedupComparison(**{**vars(full), "speedups": mark_lost(full.speedups)})


def _rows(cmp: SpeedupComparison) -> tuple[list[str], list[list[str]]]:
    df = cmp.speedups
    order = {v: i for i, v in enumerate(SPEEDUP_VERDICTS)}
    df = df.assign(_o=df["verdict"].map(order)).sort_values(["_o", "model"], kind="stable")
    vary, _ = varying(df, PAIR_AXES) if len(df) else (["model"], {})
    headers = [*vary, "baseline speedup", "new speedup", "change", f"{cmp.settings.level:.0%} CI", "q",
               "verdict", "note"]
    rows = [[*(str(getattr(r, a)) for a in vary),
             fmt_speedup(r.speedup_base, r.speedup_lo_base, r.speedup_hi_base),
             fmt_speedup(r.speedup_new, r.speedup_lo_new, r.speedup_hi_new), fmt_pct(r.change),
             fmt_interval(r.change_lo, r.change_hi), fmt_num(r.q_value, "{:.2g}"), str(r.verdict), str(r.note or "")]
            for r in df.itertuples(index=False)]
    return headers, rows


def headline(cmp: SpeedupComparison) -> str:
    failures = cmp.failures()
    state = "FAIL: " + "; ".join(failures) if failures else "PASS"
    counts = cmp.counts()
    hardware = f"{cmp.baseline['hardware']} -> {cmp.new['hardware']}" if cmp.across_hardware else \
        cmp.new["hardware"]
    return (f"{state} | deploy/train speedups only ({hardware}): "
            + ", ".join(f"{v} {counts.get(v, 0)}" for v in SPEEDUP_VERDICTS))


def method_note(cmp: SpeedupComparison) -> str:
    s = cmp.settings
    intervals = interval_note(*(cmp.speedups[c] for c in ("speedup_interval_base", "speedup_interval_new")
                                if c in cmp.speedups))
    return (f"speedup = train / deploy latency within one run; change = new / baseline; "
            f"{s.level:.0%} percentile-bootstrap CI ({s.n_boot} resamples, seed {s.seed}); SMALLER: CI below "
            f"1/(1+{s.threshold:g}) = {1 / (1 + s.threshold):.3f} and Benjamini-Hochberg at q = {s.fdr}; "
            f"LOST: baseline CI above {1 + LOST_MARGIN:g}, new CI below it" + (f"; {intervals}" if intervals else ""))


def _gate_rows(cmp: SpeedupComparison) -> list[list[str]]:
    part = cmp.gates[cmp.gates["change"].eq("regression")]
    return [[str(r.model), str(r.form), fmt_num(r.max_abs_err_base), fmt_num(r.max_abs_err_new), fmt_num(r.tolerance_new)]
            for r in part.itertuples(index=False)]


def _context(cmp: SpeedupComparison) -> tuple[list[str], list[list[str]]]:
    keys = ["source", "hardware", "run_id", "git_sha", "torch_version", "cells"]
    return ["", *keys], [[side, *("-" if ctx.get(k) is None else str(ctx.get(k)) for k in keys)]
                         for side, ctx in (("baseline", cmp.baseline), ("new", cmp.new))]


def render(cmp: SpeedupComparison, markdown: bool = False) -> str:
    """Terminal text, or Markdown for a pull-request comment; both hold the same tables."""
    ctx_headers, ctx_rows = _context(cmp)
    headers, rows = _rows(cmp)
    gates = _gate_rows(cmp)
    title = (lambda s: f"### {s}") if markdown else (lambda s: s)
    head = headline(cmp)
    parts = ["## Deploy/train speedup comparison", "", f"**{head}**"] if markdown else [head]
    parts += ["", table(ctx_headers, ctx_rows, markdown), "", title(f"Deploy/train speedups ({len(rows)})"),
              table(headers, rows, markdown)]
    if gates:
        parts += ["", title(f"Correctness gate regressions ({len(gates)})"),
                  table(["model", "form", "baseline max abs err", "new max abs err", "tolerance"], gates, markdown)]
    note = method_note(cmp)
    return "\n".join([*parts, "", f"<sub>{note}</sub>" if markdown else note, ""])


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    clean = df.astype(object).where(df.notna(), None)
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
            for row in clean.to_dict("records")]


def render_json(cmp: SpeedupComparison) -> str:
    doc = {"result": "fail" if cmp.failures() else "pass", "exit_code": cmp.exit_code(), "mode": "speedups-only",
           "failures": cmp.failures(), "across_hardware": cmp.across_hardware, "settings": asdict(cmp.settings),
           "lost_margin": LOST_MARGIN, "baseline": cmp.baseline, "new": cmp.new, "counts": cmp.counts(),
           "speedups": _records(cmp.speedups), "gates": _records(cmp.gates)}
    return json.dumps(doc, indent=2, default=str)


RENDERERS: dict[str, Callable[[SpeedupComparison], str]] = {
    "text": lambda cmp: render(cmp, markdown=False),
    "markdown": lambda cmp: render(cmp, markdown=True),
    "json": render_json,
}
