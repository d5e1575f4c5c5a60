"""What a finished `bench run` exits with, judged on every row of the run folder, resumed ones included.

A resumed sweep runs only the cells that are missing, but the run it leaves behind is the whole folder: a
`--strict` check that looked only at this invocation's cells would pass a folder full of error rows from
an earlier attempt. So the verdict judges every row of the folder, as the sweep's writer holds them once
it flushed (`judge_rows(writer.rows())`). It reads no table back: reading Parquet loads libraries and
starts threads, which a process under a tight memory limit (`ulimit -v`) that just fit the sweep may
not afford.

- 1 when no cell of the run has status `ok` (nothing was measured: every cell failed or was skipped);
- 1 with `--strict` when any row is `mismatch`, `error` or `timeout`;
- else 0. Usage errors (2, `bench.usage`) are decided before a run is judged; Ctrl-C (130) and SIGTERM
  (143) at any instant (`bench.sweep.driver.signals`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

FAILED_STATUSES: tuple[str, ...] = ("mismatch", "error", "timeout")
"""Statuses `--strict` fails on; `oom` (the cell does not fit) and `skipped` are properties of the cell."""
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 130, 143


@dataclass(frozen=True)
class RunVerdict:
    """Counts by status over every row of one run folder, and the labels of its failed cells."""

    counts: dict[str, int]
    failed: tuple[str, ...]

    @property
    def measured(self) -> int:
        return self.counts.get("ok", 0)

    def exit_code(self, strict: bool) -> int:
        if self.measured == 0 or (strict and self.failed):
            return EXIT_FAILED
        return EXIT_OK

    def lines(self, strict: bool) -> list[str]:
        """What the exit code means, for stderr; empty when it is 0."""
        total = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items())) or "no rows"
        out = []
        if self.measured == 0:
            out.append(f"nothing was measured: no cell of the run has status ok ({total})")
        if strict and self.failed:
            shown = "; ".join(self.failed[:10]) + (f"; ... {len(self.failed) - 10} more"
                                                   if len(self.failed) > 10 else "")
            out.append(f"--strict: {len(self.failed)} cell(s) of the run (resumed ones included) ended as "
                       f"{'/'.join(FAILED_STATUSES)}: {shown}")
        return out


def judge_rows(rows: Iterable[Mapping[str, Any]]) -> RunVerdict:
    """Count every row's status (rows as `bench.results.io.RunWriter.rows` gives them)."""
    counts: Counter = Counter()
    failed = []
    for r in rows:
        counts[str(r["status"])] += 1
        if r["status"] in FAILED_STATUSES:
            failed.append(f"{r['model']} {r['form']} b{r['batch_size']} {r['precision']} {r['runtime']} "
                          f"{r['resolution']}px: {r['status']}")
    return RunVerdict(counts=dict(counts), failed=tuple(failed))
