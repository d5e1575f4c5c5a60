"""`summary.md`: what this GPU measured first (deploy/train speedup per model, the paper's Table 4 ratio, the
blog post's timer beside the harness's), then one section per check with its verdict, its estimate and
the seconds it took; and one archive that holds it all, the presets' run folders included."""

from __future__ import annotations

import math
import os
import tarfile
from pathlib import Path
from typing import Any, Optional, Sequence

from bench.gpucheck.steps import INFO, StepResult
from bench.results.layout import SUMMARY_FILE

SKIPPED_IN_ARCHIVE: tuple[str, ...] = (".pt.trace.json", ".inductor-cache")
"""Large and rebuilt on demand: profiler traces, the inductor's compile cache."""


def overall(results: list[StepResult]) -> str:
    """FAIL if any check failed, else WARN if any warned or was skipped, else PASS (INFO lines never count)."""
    verdicts = {r.verdict.verdict for r in results}
    return "FAIL" if "FAIL" in verdicts else "WARN" if verdicts & {"WARN", "SKIP"} else "PASS"


def _fmt(value: Any, spec: str) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(number) else format(number, spec)


def preset_table(run_dir: Path) -> list[str]:
    """One row per train/deploy pair of a preset's run: throughput of both forms, the paired speedup with
    its 95% interval, and for the paper's setting the deploy form's speed over the paper's 1080 Ti."""
    from bench.report.tables import paper_table, speedup_table
    from bench.results import load

    df = load(run_dir)
    pairs = speedup_table(df)
    if pairs.empty:
        return ["(no pair of this run has both forms ok yet)"]
    ratio = paper_table(df).set_index("model")["ratio_measured_to_paper"].to_dict()
    lines = ["| model | batch | precision | train samples/s | deploy samples/s | deploy/train speedup [95% CI] | "
             "deploy / paper's 1080 Ti | flag |", "|---|---|---|---|---|---|---|---|"]
    for _, p in pairs.iterrows():
        interval = (f" [{_fmt(p['speedup_lo'], '.3f')}, {_fmt(p['speedup_hi'], '.3f')}]"
                    if not math.isnan(float(p["speedup_lo"])) else "")
        paper = _fmt(ratio.get(p["model"]), ".2f")
        lines.append(f"| {p['model']} | {p['batch_size']} | {p['precision']} | {_fmt(p['throughput_train'], '.0f')} | "
                     f"{_fmt(p['throughput_deploy'], '.0f')} | {_fmt(p['speedup'], '.3f')}{interval} | "
                     f"{paper if paper == '-' else paper + 'x'} | {p['flag']} |")
    return lines


def results_section(runs: Sequence[tuple[str, Path]], blog: Optional[StepResult]) -> list[str]:
    """The results a reader wants first: each preset's pairs, and the blog post's timer beside the harness's."""
    lines: list[str] = []
    for name, run_dir in runs:
        lines += ["", f"## Results: preset {name} (`{run_dir.name}`)", ""]
        lines += preset_table(run_dir) if (run_dir / SUMMARY_FILE).is_file() else ["(no rows yet)"]
    if blog is not None and blog.verdict.verdict == "PASS" and blog.verdict.lines:
        lines += ["", "## The blog post's 108x", "", f"- {blog.verdict.lines[0]} (claimed 108x: "
                  "the post's timer stops at the last launch, not at the last kernel)"]
    if lines:
        lines += ["", "Speedup = paired median of train/deploy block ratios (`speedups.csv`); 'deploy / paper's "
                  "1080 Ti' = this GPU's deploy-form throughput over the RepVGG paper's Table 4 speed, given only "
                  "at the paper's setting (batch 128, fp32, 224x224)."]
    return lines


def render(results: list[StepResult], header: list[str], runs: Sequence[tuple[str, Path]] = ()) -> str:
    blog = next((r for r in results if r.name == "blog"), None)
    lines = ["# bench gpu-check", "", *header, *results_section(runs, blog), "",
             f"## Checks: overall **{overall(results)}**", "",
             "| check | verdict | estimate s | seconds |", "|---|---|---|---|"]
    lines += [f"| {r.name}: {r.title} | {r.verdict.verdict} | {_fmt(r.estimate_s, '.0f')} | {r.seconds:.0f} |"
              for r in results]
    for r in results:
        lines += ["", f"### {r.name}: {r.verdict.verdict}", "", f"`{r.command}`", ""]
        lines += [f"- {line}" for line in r.verdict.lines] or ["- (no numbers)"]
    lines += ["", f"Lines starting `{INFO.strip()}` report conditions a healthy GPU shows, with the reason; "
              "they never raise a verdict."]
    return "\n".join(lines) + "\n"


def _keep(info: tarfile.TarInfo) -> Optional[tarfile.TarInfo]:
    return None if any(part.endswith(SKIPPED_IN_ARCHIVE) for part in info.name.split("/")) else info


def write(out: Path, results: list[StepResult], header: list[str], runs: Sequence[tuple[str, Path]] = (),
          archive: Optional[Path] = None) -> tuple[Path, Path]:
    """Write `out/summary.md` and the archive (default `<out>.tar.gz`): the whole folder and each preset's
    run folder (as `results/<hardware>/<run_id>`), traces and compile caches left out. The archive is
    written under a temporary name and renamed, so a run killed while writing keeps the previous one."""
    summary = out / "summary.md"
    summary.write_text(render(results, header, runs))
    archive = archive or out.with_name(out.name + ".tar.gz")
    partial = archive.with_name(f".{archive.name}.partial-{os.getpid()}")
    with tarfile.open(partial, "w:gz") as tar:
        tar.add(out, arcname=out.name, filter=_keep)
        for _, run_dir in runs:
            if run_dir.is_dir():
                tar.add(run_dir, arcname=f"{out.name}/results/{run_dir.parent.name}/{run_dir.name}", filter=_keep)
    os.replace(partial, archive)
    return summary, archive
