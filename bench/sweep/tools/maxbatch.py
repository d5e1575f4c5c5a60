"""`--max-batch`: the largest batch that fits, per model / form / mode / precision / format / resolution.

Search: double from 1 until a probe fails (the last step probes `cap` itself), then bisect between the last fit and the first
failure: about 2*log2(max) probes. Each probe is a fresh subprocess (`bench.sweep.worker.probe`: load the
model, run the call twice so optimizer state and autotuner workspaces are allocated too), so a failed
probe leaves no fragmented allocator behind to shrink the next one. The model of each (model, form) is
built once, by this process, and saved for its probes to load (a RepVGG-B3 build takes seconds, and a
search makes a dozen or more probes). CUDA only: on the CPU the limit is host RAM plus swap, and the
search would measure the swap policy, not the model.

What does not fit: an out-of-memory failure; and, once a smaller batch of the same setting fitted, a
failure that names a size limit (`SIZE_LIMIT_MARKERS`): on a card of 139 GiB a batch can outgrow 32-bit
indexing or what cuDNN supports before it outgrows memory. Any other failure stops the search and is
reported, since a bug or a timeout says nothing about memory.

Where every probe up to the cap fits, no limit was found: the CSV's `max_batch_size` is left empty and
`largest_fitting_batch_size` holds the cap (a lower bound), and the log says "no limit found up to N".
"""

from __future__ import annotations

import csv
import dataclasses
import tempfile
from pathlib import Path
from typing import Callable, Optional

from bench.results.cell import Cell
from bench.sweep.plan.cells import skip_reason
from bench.sweep.local.executor import run_cell_subprocess
from bench.sweep.protocol import CellOutcome, CellSpec

DEFAULT_CAP = 2**14
SIZE_LIMIT_MARKERS: tuple[str, ...] = (
    "32-bit index", "32bitindexmath",  # torch's canUse32BitIndexMath checks
    "int_max", "integer multiplication overflow", "too large", "too big",
    "not_supported", "not supported",  # CUDNN_STATUS_NOT_SUPPORTED, CUBLAS_STATUS_NOT_SUPPORTED
    "cudnn_status_bad_param", "no valid execution plans", "unable to find a valid cudnn algorithm",
    "invalid configuration argument",  # a kernel launch whose grid outgrew the device's limits
)
"""Failure texts (lower case) that name a size limit rather than a bug, counted as "does not fit" when a
smaller batch of the same setting fitted."""
GROUP_AXES: tuple[str, ...] = ("model", "form", "mode", "precision", "memory_format", "resolution")
CSV_COLUMNS: tuple[str, ...] = (*GROUP_AXES, "max_batch_size", "largest_fitting_batch_size",
                                 "first_failing_batch_size", "limit_found", "cap", "probes", "error",
                                 "limit_reason")


@dataclasses.dataclass
class MaxBatch:
    cell: Cell
    max_batch_size: int
    first_failing_batch_size: Optional[int]
    probes: int
    error: Optional[str] = None
    cap: int = DEFAULT_CAP
    # True only when a probe that does not fit bounds the search: every probe up to the cap fitting (the cap
    # is then a lower bound, not the maximum) or another failure leaves it False.
    limit_found: bool = False
    limit_reason: Optional[str] = None
    """What the first failing batch met: "oom: ..." or "size limit: ..." (module docstring)."""

    def describe(self) -> str:
        if not self.limit_found:
            return f"no limit found up to {self.cap}" if self.error is None else "search stopped"
        if self.max_batch_size == 0:
            return "batch 1 does not fit"
        return f"max batch {self.max_batch_size}"


Probe = Callable[[Cell], CellOutcome]


def does_not_fit(outcome: CellOutcome, fitted_before: bool) -> Optional[str]:
    """Why a failed probe means "too large" ("oom: ..." / "size limit: ..."), or None for a failure that
    stops the search. A size-limit text counts only after a smaller batch of the setting fitted."""
    if outcome.status == "oom":
        return f"oom: {outcome.error}"
    text = str(outcome.error or "").lower()
    if outcome.status == "error" and fitted_before and any(marker in text for marker in SIZE_LIMIT_MARKERS):
        return f"size limit: {outcome.error}"
    return None


def search(cell: Cell, probe: Probe, cap: int = DEFAULT_CAP) -> MaxBatch:
    """Largest batch b <= cap whose probe is 'ok' (0 if batch 1 does not fit); what counts as not fitting:
    `does_not_fit`. Any other failure stops the search and is reported."""
    probes, good, bad = 0, 0, None
    size, reason = 1, None
    while size <= cap:
        outcome = probe(dataclasses.replace(cell, batch_size=size))
        probes += 1
        if outcome.status == "ok":
            good = size
            if good == cap:
                break
            size = min(size * 2, cap)
            continue
        reason = does_not_fit(outcome, good > 0)
        if reason is None:
            return MaxBatch(cell, good, size, probes, f"{outcome.status}: {outcome.error}", cap, False)
        bad = size
        break
    while bad is not None and bad - good > 1:
        mid = (good + bad) // 2
        outcome = probe(dataclasses.replace(cell, batch_size=mid))
        probes += 1
        if outcome.status == "ok":
            good = mid
            continue
        mid_reason = does_not_fit(outcome, good > 0)
        if mid_reason is None:
            return MaxBatch(cell, good, mid, probes, f"{outcome.status}: {outcome.error}", cap, False)
        bad, reason = mid, mid_reason
    return MaxBatch(cell, good, bad, probes, reason if good == 0 else None, cap,
                    limit_found=bad is not None, limit_reason=reason)


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


def subprocess_probe(device: str, seed: int, timeout_s: float, module_path: Optional[Path] = None) -> Probe:
    def probe(cell: Cell) -> CellOutcome:
        spec = CellSpec(cell=cell, device=device, seed=seed,
                        module_path=str(module_path) if module_path is not None else None)
        return run_cell_subprocess(spec, timeout_s)

    return probe


def save_form(cell: Cell, seed: int, folder: Path) -> Optional[Path]:
    """Build `cell`'s model and form once (as a probe would) and `torch.save` it for the probes to load;
    None where the module cannot be pickled (each probe then builds it)."""
    import pickle

    import torch

    from bench.models.build import build_form

    path = folder / f"{len(list(folder.iterdir()))}.pt"
    module = build_form(cell.model, cell.form, seed)
    try:
        torch.save(module, path)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        print(f"{cell.model} {cell.form}: cannot save the build for the probes ({exc}); each probe builds it")
        return None
    return path


def write_csv(results: list[MaxBatch], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for r in results:
            writer.writerow([*(getattr(r.cell, a) for a in GROUP_AXES),
                             r.max_batch_size if r.limit_found else "", r.max_batch_size,
                             r.first_failing_batch_size, r.limit_found, r.cap, r.probes, r.error or "",
                             r.limit_reason or ""])


def run_max_batch(cells: list[Cell], device: str, seed: int, timeout_s: float, out_csv: Path,
                  cap: int = DEFAULT_CAP, print_fn: Callable[[str], None] = print) -> list[MaxBatch]:
    if device != "cuda":
        raise RuntimeError("--max-batch needs CUDA: on the CPU the limit is host RAM plus swap, so the "
                           "search would time the swap policy; choose batch sizes with --batch instead")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-maxbatch-") as tmp:
        saved: dict[tuple[str, str], Optional[Path]] = {}
        for cell in groups(cells, device):
            key = (cell.model, cell.form)
            if key not in saved:
                saved[key] = save_form(cell, seed, Path(tmp))
            found = search(cell, subprocess_probe(device, seed, timeout_s, saved[key]), cap)
            results.append(found)
            label = " ".join(str(getattr(cell, a)) for a in GROUP_AXES)
            note = f"  ({found.error})" if found.error else ""
            print_fn(f"{label}: {found.describe()} ({found.probes} probes){note}")
    write_csv(results, out_csv)
    print_fn(f"wrote {out_csv}")
    return results

