"""`--max-batch`: the largest batch that fits, per model / form / mode / precision / format / resolution.

Search: double from 1 until a probe fails (the last step probes `cap` itself), then bisect between the last fit and the first
failure: about 2*log2(max) probes. Each probe is a fresh subprocess (`CellSpec(probe=True)`: build, run
the call twice so optimizer state and autotuner workspaces are allocated too), so a failed probe leaves
no fragmented allocator behind to shrink the next one. CUDA only: on the CPU the limit is host RAM plus
swap, and the search would measure the swap policy, not the model.

Where every probe up to the cap fits, no limit was found: the CSV's `max_batch_size` is left empty and
`largest_fitting_batch_size` holds the cap (a lower bound), and the log says "no limit found up to N".
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Callable, Optional

from bench.sweep.cells import Cell, skip_reason
from bench.sweep.executor import run_cell_subprocess
from bench.sweep.protocol import CellOutcome, CellSpec

DEFAULT_CAP = 2**14
GROUP_AXES: tuple[str, ...] = ("model", "form", "mode", "precision", "memory_format", "resolution")
CSV_COLUMNS: tuple[str, ...] = (*GROUP_AXES, "max_batch_size", "largest_fitting_batch_size",
                                 "first_failing_batch_size", "limit_found", "cap", "probes", "error")


@dataclasses.dataclass
class MaxBatch:
    cell: Cell
    max_batch_size: int
    first_failing_batch_size: Optional[int]
    probes: int
    error: Optional[str] = None
    cap: int = DEFAULT_CAP
    # True only when an out-of-memory probe bounds the search: every probe up to the cap fitting (the cap
    # is then a lower bound, not the maximum) or a non-memory failure leaves it False.
    limit_found: bool = False

    def describe(self) -> str:
        if not self.limit_found:
            return f"no limit found up to {self.cap}" if self.error is None else "search stopped"
        if self.max_batch_size == 0:
            return "batch 1 does not fit"
        return f"max batch {self.max_batch_size}"


Probe = Callable[[Cell], CellOutcome]


def search(cell: Cell, probe: Probe, cap: int = DEFAULT_CAP) -> MaxBatch:
    """Largest batch b <= cap with probe(b).status == 'ok' (0 if batch 1 does not fit).

    Only 'oom' counts as "does not fit"; any other failure stops the search and is reported, since a bug
    or a timeout says nothing about memory.
    """
    probes, good, bad = 0, 0, None
    size, last_error = 1, None
    while size <= cap:
        outcome = probe(dataclasses.replace(cell, batch_size=size))
        probes += 1
        if outcome.status == "ok":
            good = size
            if good == cap:
                break
            size = min(size * 2, cap)
            continue
        if outcome.status != "oom":
            return MaxBatch(cell, good, size, probes, f"{outcome.status}: {outcome.error}", cap, False)
        bad, last_error = size, outcome.error
        break
    while bad is not None and bad - good > 1:
        mid = (good + bad) // 2
        outcome = probe(dataclasses.replace(cell, batch_size=mid))
        probes += 1
        if outcome.status == "ok":
            good = mid
        elif outcome.status == "oom":
            bad, last_error = mid, outcome.error
        else:
            return MaxBatch(cell, good, mid, probes, f"{outcome.status}: {outcome.error}", cap, False)
    return MaxBatch(cell, good, bad, probes, last_error if good == 0 else None, cap,
                    limit_found=bad is not None)


def groups(cells: list[Cell], device: str) -> list[Cell]:
    """One representative eager cell per GROUP_AXES combination that is not skipped on this device."""
    seen, out = set(), []
    for cell in cells:
        rep = dataclasses.replace(cell, runtime="eager", batch_size=1, skip_reason=None)
        key = tuple(getattr(rep, a) for a in GROUP_AXES)
        if key in seen or skip_reason(rep, device):
            continue
        seen.add(key)
        out.append(rep)
    return out


def subprocess_probe(device: str, seed: int, timeout_s: float) -> Probe:
    def probe(cell: Cell) -> CellOutcome:
        return run_cell_subprocess(CellSpec(cell=cell, device=device, seed=seed, probe=True), timeout_s)

    return probe


def write_csv(results: list[MaxBatch], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for r in results:
            writer.writerow([*(getattr(r.cell, a) for a in GROUP_AXES),
                             r.max_batch_size if r.limit_found else "", r.max_batch_size,
                             r.first_failing_batch_size, r.limit_found, r.cap, r.probes, r.error or ""])


def run_max_batch(cells: list[Cell], device: str, seed: int, timeout_s: float, out_csv: Path,
                  cap: int = DEFAULT_CAP, print_fn: Callable[[str], None] = print) -> list[MaxBatch]:
    if device != "cuda":
        raise RuntimeError("--max-batch needs CUDA: on the CPU the limit is host RAM plus swap, so the "
                           "search would time the swap policy; choose batch sizes with --batch instead")
    probe = subprocess_probe(device, seed, timeout_s)
    results = []
    for cell in groups(cells, device):
        found = search(cell, probe, cap)
        results.append(found)
        label = " ".join(str(getattr(cell, a)) for a in GROUP_AXES)
        note = f"  ({found.error})" if found.error else ""
        print_fn(f"{label}: {found.describe()} ({found.probes} probes){note}")
    write_csv(results, out_csv)
    print_fn(f"wrote {out_csv}")
    return results

