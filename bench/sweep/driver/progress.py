"""Progress lines: the cell starting (with done / left / ETA) and a one-line summary when it ends.

Plain lines rather than a redrawn bar so the log of a long GPU sweep (often redirected to a file) reads
the same as the terminal. ETA = mean wall time of the cells run so far in this invocation x cells left to
run / workers; skipped and already-finished cells cost nothing and are not counted.
"""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

from bench.results.noise import is_noisy, noisy_reason
from bench.results.schema import AXES, Result
from bench.results.cell import Cell


def format_duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def summary_line(result: Result) -> str:
    """e.g. 'ok  3.21 ms (p5-p90 3.1-3.4)  2492 samples/s  gate 2.1e-07 <= 1e-04  (4.2 s)'; a cell whose
    timing judged itself noisy (`bench.results.noise`) is marked NOISY as it finishes; an int8 cell adds
    'fp32 gate' and its int8 SQNR against the training form's fp32 and its speedup over its fp32 graph."""
    parts = [f"{result.status:<8}"]
    if result.latency_ms_median is not None:
        parts.append(f"{result.latency_ms_median:.4g} ms{_spread(result)}")
    if is_noisy(result):
        parts.append(noisy_reason(result).replace("noisy", "NOISY", 1))
    if result.throughput_samples_s is not None:
        parts.append(f"{result.throughput_samples_s:.4g} samples/s")
    if result.max_rel_err is not None and result.tolerance is not None:
        gate = "fp32 gate" if result.precision == "int8" else "gate"
        parts.append(f"{gate} {result.max_rel_err:.2g} {'<=' if result.max_rel_err <= result.tolerance else '>'} "
                     f"{result.tolerance:g}")
    if result.int8_sqnr_db_vs_train_fp32 is not None:
        parts.append(f"int8 SQNR {result.int8_sqnr_db_vs_train_fp32:.1f} dB")
    if result.int8_speedup_vs_fp32_median is not None:
        parts.append(f"{result.int8_speedup_vs_fp32_median:.2f}x fp32")
    if result.duration_s is not None:
        parts.append(f"({result.duration_s:.1f} s)")
    reason = result.error or result.skip_reason
    if reason and result.status != "ok":
        parts.append(f"- {reason.splitlines()[0][:160]}")
    return "  ".join(parts)


def _spread(result: Result) -> str:
    """The recorded spread beside the median, labelled: ' (p5-p90 3.1-3.4)'."""
    if result.latency_ms_p5 is None or result.latency_ms_p90 is None:
        return ""
    return f" (p5-p90 {result.latency_ms_p5:.4g}-{result.latency_ms_p90:.4g})"


class Progress:
    def __init__(self, total: int, to_run: int, workers: int = 1, stream: TextIO | None = None) -> None:
        self.total, self.to_run, self.workers = total, to_run, max(1, workers)
        self.done = 0
        self.ran = 0
        self.ran_seconds = 0.0
        self.stream = stream or sys.stdout
        self.started = time.time()

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def eta_s(self) -> Optional[float]:
        if self.ran == 0:
            return None
        left = self.to_run - self.ran
        return self.ran_seconds / self.ran * left / self.workers

    def already_done(self, cell: Cell) -> None:
        self.done += 1
        self._print(f"[{self.done}/{self.total}] {cell.label()}  already in results: skipped (resume)")

    def start(self, cell: Cell, label: Optional[str] = None) -> None:
        left = self.total - self.done
        self._print(f"[{self.done + 1}/{self.total}] {label or cell.label()}  "
                    f"(done {self.done}, left {left}, ETA {format_duration(self.eta_s())})")

    def finish(self, result: Result, ran: bool) -> None:
        self.done += 1
        if ran:
            self.ran += 1
            self.ran_seconds += result.duration_s or 0.0
        indent = "    -> " if ran else f"[{self.done}/{self.total}] "
        label = "" if ran else f"{Cell(**{a: getattr(result, a) for a in AXES}).label()}  "
        self._print(f"{indent}{label}{summary_line(result)}")

    def end(self, counts: dict[str, int]) -> None:
        text = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        self._print(f"sweep finished in {format_duration(time.time() - self.started)}: {text}")

