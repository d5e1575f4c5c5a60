"""`summary.md`: one section per check, its verdict and the numbers behind it; and the archive."""

from __future__ import annotations

import tarfile
from pathlib import Path

from bench.gpucheck.steps import StepResult


def overall(results: list[StepResult]) -> str:
    """FAIL if any check failed, else WARN if any warned or was skipped, else PASS."""
    verdicts = {r.verdict.verdict for r in results}
    return "FAIL" if "FAIL" in verdicts else "WARN" if verdicts & {"WARN", "SKIP"} else "PASS"


def render(results: list[StepResult], header: list[str]) -> str:
    lines = ["# bench gpu-check", "", *header, "", f"Overall: **{overall(results)}**", "",
             "| check | verdict | seconds |", "|---|---|---|"]
    lines += [f"| {r.name}: {r.title} | {r.verdict.verdict} | {r.seconds:.0f} |" for r in results]
    for r in results:
        lines += ["", f"## {r.name}: {r.verdict.verdict}", "", f"`{r.command}`", ""]
        lines += [f"- {line}" for line in r.verdict.lines] or ["- (no numbers)"]
    return "\n".join(lines) + "\n"


def write(out: Path, results: list[StepResult], header: list[str]) -> tuple[Path, Path]:
    """Write `out/summary.md` and `out.tar.gz` (the whole folder, traces left out: they are large)."""
    summary = out / "summary.md"
    summary.write_text(render(results, header))
    archive = out.with_name(out.name + ".tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(out, arcname=out.name, filter=lambda info: None if info.name.endswith(".pt.trace.json") else info)
    return summary, archive
