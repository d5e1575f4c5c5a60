"""Render a `Comparison`: a terminal table, Markdown for a CI comment, or JSON for machines.

The text and Markdown forms share one list of sections (title + rows), so both always say the same thing.
Cells are labelled by the axes that vary among them; the axes that do not vary are printed once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench.compare.comparison import Comparison
from bench.results.schema import AXES
from bench.compare.speedup import PAIR_AXES, interval_note
from bench.results.table_writer import table
from bench.compare.verdicts import AMBIGUOUS, FASTER, MISSING, NEW, SAME, SLOWER, VERDICTS


@dataclass
class Section:
    title: str
    headers: list[str]
    rows: list[list[str]]
    collapsed: bool = False


def fmt_num(value: Any, fmt: str = "{:.4g}") -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def fmt_pct(ratio: float) -> str:
    return "" if ratio is None or math.isnan(ratio) else f"{ratio - 1:+.1%}"


def fmt_interval(lo: float, hi: float) -> str:
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return ""
    return f"[{lo - 1:+.1%}, {hi - 1:+.1%}]"


def varying(df: pd.DataFrame, axes: tuple[str, ...]) -> tuple[list[str], dict[str, Any]]:
    """(axes with more than one value, {axis: value} of the constant ones); `model` is always shown."""
    vary = [a for a in axes if a == "model" or df[a].nunique(dropna=False) > 1]
    fixed = {a: df[a].iloc[0] for a in axes if a not in vary and len(df)}
    return vary, fixed


def _cell_rows(df: pd.DataFrame, vary: list[str]) -> list[list[str]]:
    rows = []
    for r in df.itertuples(index=False):
        rows.append([*(str(getattr(r, a)) for a in vary), _status(r.status_base, r.status_new),
                     fmt_num(r.median_ms_base), fmt_num(r.median_ms_new), fmt_pct(r.ratio), fmt_interval(r.ci_lo, r.ci_hi),
                     fmt_num(r.q_value, "{:.2g}"), str(r.verdict), str(r.note or "")])
    return rows


def _status(base: Any, new: Any) -> str:
    base = base if isinstance(base, str) else "-"
    new = new if isinstance(new, str) else "-"
    return base if base == new else f"{base} -> {new}"


def _ci(cmp: Comparison) -> str:
    return f"{cmp.settings.level:.0%} bootstrap CI"


def cell_sections(cmp: Comparison, show_all: bool) -> list[Section]:
    """One section per notable verdict (SLOWER first), plus every cell with `show_all`."""
    vary, _ = varying(cmp.cells, AXES)
    headers = [*vary, "status", "baseline ms", "new ms", "change", _ci(cmp), "q", "verdict", "note"]
    order = {v: i for i, v in enumerate(VERDICTS)}
    cells = cmp.cells.assign(_o=cmp.cells["verdict"].map(order)).sort_values(["_o", "ratio"], ascending=[True, False])
    titles = {SLOWER: "Slower cells (regressions)", AMBIGUOUS: "Ambiguous cells (never fail; re-measure)",
              FASTER: "Faster cells", MISSING: "Missing cells (absent or not timed in the new run)",
              NEW: "New cells (absent or not timed in the baseline)"}
    out = [Section(title, headers, _cell_rows(cells[cells["verdict"].eq(v)], vary)) for v, title in titles.items()]
    if show_all:
        out.append(Section("All cells", headers, _cell_rows(cells, vary), collapsed=True))
    return out


def speedup_section(cmp: Comparison, everything: bool = False) -> Section:
    """Speedup changes that are not SAME (all pairs with `everything`, or across hardware)."""
    df = cmp.speedups
    vary, _ = varying(df, PAIR_AXES) if len(df) else (["model"], {})
    shown = df if everything or cmp.across_hardware else df[~df["verdict"].eq(SAME)]
    headers = [*vary, "baseline speedup", "new speedup", "change", _ci(cmp), "q"]
    headers += ["note"] if cmp.across_hardware else ["verdict", "note"]
    rows = []
    for r in shown.itertuples(index=False):
        row = [*(str(getattr(r, a)) for a in vary), fmt_speedup(r.speedup_base, r.speedup_lo_base, r.speedup_hi_base),
               fmt_speedup(r.speedup_new, r.speedup_lo_new, r.speedup_hi_new), fmt_pct(r.change),
               fmt_interval(r.change_lo, r.change_hi), fmt_num(r.q_value, "{:.2g}")]
        rows.append([*row, str(r.note)] if cmp.across_hardware else [*row, str(r.verdict), str(r.note)])
    if cmp.across_hardware:
        title = "Deploy/train speedup per hardware"
    else:
        title = "All deploy/train speedups" if everything else "Deploy/train speedup changes"
    return Section(title, headers, rows, collapsed=everything and not cmp.across_hardware)


def fmt_speedup(value: float, lo: float, hi: float) -> str:
    if value is None or math.isnan(value):
        return ""
    return f"{value:.2f}x [{lo:.2f}, {hi:.2f}]" if not math.isnan(lo) else f"{value:.2f}x"


def other_sections(cmp: Comparison) -> list[Section]:
    vary, _ = varying(cmp.cells, AXES)
    gates = cmp.gates
    out = []
    for change, title in (("regression", "Correctness gate regressions (ok -> mismatch)"),
                          ("fixed", "Correctness gates fixed (mismatch -> ok)"),
                          ("still", "Still mismatching")):
        part = gates[gates["change"].eq(change)]
        out.append(Section(title, [*vary, "baseline max abs err", "new max abs err", "tolerance"],
                           [[*(str(getattr(r, a)) for a in vary), fmt_num(r.max_abs_err_base), fmt_num(r.max_abs_err_new),
                             fmt_num(r.tolerance_new)] for r in part.itertuples(index=False)]))
    out.append(Section(f"Memory changes (peak allocated, beyond {cmp.settings.memory_tolerance_mib:g} MiB)",
                       [*vary, "baseline MiB", "new MiB", "delta MiB"],
                       [[*(str(getattr(r, a)) for a in vary), fmt_num(r.peak_allocated_mib_base, "{:.1f}"),
                         fmt_num(r.peak_allocated_mib_new, "{:.1f}"), fmt_num(r.delta_mib, "{:+.1f}")]
                        for r in cmp.memory.itertuples(index=False)]))
    return out


def hardware_section(cmp: Comparison) -> Section:
    df = cmp.hardware if cmp.hardware is not None else pd.DataFrame(columns=list(AXES))
    vary, _ = varying(df, AXES) if len(df) else (["model"], {})
    b, n = cmp.baseline["hardware"], cmp.new["hardware"]
    rows = [[*(str(getattr(r, a)) for a in vary), fmt_num(r.throughput_base, "{:.1f}"), fmt_num(r.throughput_new, "{:.1f}"),
             fmt_num(r.throughput_ratio, "{:.3f}"),
             f"[{r.throughput_ratio_lo:.3f}, {r.throughput_ratio_hi:.3f}]" if not math.isnan(r.throughput_ratio_lo)
             else ""] for r in df.itertuples(index=False)]
    return Section(f"Throughput (samples/s) per hardware: {n} / {b}",
                   [*vary, f"{b}", f"{n}", "ratio", _ci(cmp)], rows)


def sections(cmp: Comparison, show_all: bool = False) -> list[Section]:
    """Every section in reading order (failures first); empty ones are dropped by the renderers."""
    gates_regressed, *gates_rest, memory = other_sections(cmp)
    if cmp.across_hardware:
        return [hardware_section(cmp), speedup_section(cmp), gates_regressed]
    slower, *cells_rest = cell_sections(cmp, show_all)
    everything = [cells_rest.pop(), speedup_section(cmp, everything=True)] if show_all else []
    return [slower, gates_regressed, *cells_rest, speedup_section(cmp), memory, *gates_rest, *everything]


def common_axes(cmp: Comparison) -> str:
    """'mode=infer, precision=fp32, ...': the axes every compared cell shares."""
    _, fixed = varying(cmp.cells, AXES)
    return ", ".join(f"{k}={v}" for k, v in fixed.items())


def headline(cmp: Comparison) -> str:
    failures = cmp.failures()
    state = "FAIL: " + "; ".join(failures) if failures else "PASS"
    if cmp.across_hardware:
        return f"{state} (different hardware: throughput side by side, no timing verdicts)"
    counts = cmp.counts()
    return f"{state} | " + ", ".join(f"{v} {counts.get(v, 0)}" for v in VERDICTS)


def method_note(cmp: Comparison) -> str:
    s = cmp.settings
    kinds = [cmp.speedups[c] for c in ("speedup_interval_base", "speedup_interval_new") if c in cmp.speedups]
    intervals = interval_note(*kinds)
    return (f"change = new / baseline median latency - 1; {s.level:.0%} percentile-bootstrap CI "
            f"({s.n_boot} resamples, seed {s.seed}); threshold {s.threshold:.0%}; a verdict needs the CI beyond "
            f"the threshold and Mann-Whitney + Benjamini-Hochberg at FDR q = {s.fdr}"
            + (f"; {intervals}" if intervals else ""))


def _context_rows(cmp: Comparison) -> tuple[list[str], list[list[str]]]:
    keys = ["source", "hardware", "run_id", "git_sha", "torch_version", "cuda_version", "cells"]
    return ["", *keys], [[side, *("-" if ctx.get(k) is None else str(ctx.get(k)) for k in keys)]
                         for side, ctx in (("baseline", cmp.baseline), ("new", cmp.new))]


def render_text(cmp: Comparison, show_all: bool = False) -> str:
    headers, rows = _context_rows(cmp)
    parts = [table(headers, rows, False), "", f"all cells: {common_axes(cmp)}", "", headline(cmp)]
    for s in sections(cmp, show_all):
        if s.rows:
            parts += ["", f"{s.title} ({len(s.rows)})", table(s.headers, s.rows, False)]
    return "\n".join([*parts, "", method_note(cmp), ""])


GITHUB_COMMENT_LIMIT = 65536
"""Characters GitHub accepts in one comment; collapsed detail tables are dropped first to fit."""


def render_markdown(cmp: Comparison, show_all: bool = True, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    headers, rows = _context_rows(cmp)
    head = ["## Benchmark comparison", "", f"**{headline(cmp)}**", "", table(headers, rows, True), "",
            f"All cells: {common_axes(cmp)}"]
    foot = ["", f"<sub>{method_note(cmp)}</sub>", ""]
    parts, dropped = list(head), []
    for s in sections(cmp, show_all):
        if not s.rows:
            continue
        body = table(s.headers, s.rows, True)
        if s.collapsed:
            block = ["", f"<details><summary>{s.title} ({len(s.rows)})</summary>", "", body, "", "</details>"]
        else:
            block = ["", f"### {s.title} ({len(s.rows)})", "", body]
        if len("\n".join([*parts, *block, *foot])) > limit - 200:
            dropped.append(s.title)
            continue
        parts += block
    if dropped:
        parts += ["", f"_Left out to fit one comment: {', '.join(dropped)}; run `bench compare --json` for "
                  "everything._"]
    return "\n".join([*parts, *foot])


def _records(df: pd.DataFrame | None) -> list[dict[str, Any]] | None:
    if df is None:
        return None
    clean = df.astype(object).where(df.notna(), None)
    return [{k: _plain(v) for k, v in row.items()} for row in clean.to_dict("records")]


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def render_json(cmp: Comparison) -> str:
    doc = {"result": "fail" if cmp.failures() else "pass", "exit_code": cmp.exit_code(),
           "failures": cmp.failures(), "across_hardware": cmp.across_hardware, "settings": asdict(cmp.settings),
           "baseline": cmp.baseline, "new": cmp.new, "counts": cmp.counts(), "cells": _records(cmp.cells),
           "speedups": _records(cmp.speedups), "memory": _records(cmp.memory), "gates": _records(cmp.gates),
           "hardware": _records(cmp.hardware)}
    return json.dumps(doc, indent=2, default=str)


RENDERERS: dict[str, Callable[..., str]] = {"text": render_text, "markdown": render_markdown, "json": render_json}
