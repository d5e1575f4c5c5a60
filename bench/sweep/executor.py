"""Executors: where cells run. Today a local pool of subprocesses; the interface is two callbacks wide.

`Executor.run(specs, on_start, on_done)` runs every spec and reports each one; nothing about cells, rows or
files leaks into it, so a Slurm (submitit) or Ray executor only has to run `python -m bench.sweep.cell
SPEC OUT` somewhere and hand back the outcome file.

`LocalExecutor`: one worker per visible GPU (each pinned with CUDA_VISIBLE_DEVICES, so a cell owns its
GPU), one worker on the CPU (parallel CPU cells would steal each other's cores and time nothing useful).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Optional, Protocol, Sequence

import bench
from bench.sweep.orphans import die_with_parent
from bench.sweep.protocol import CellOutcome, CellSpec

OnStart = Callable[[CellSpec, int], None]
OnDone = Callable[[CellSpec, CellOutcome, float, float], None]
"""on_done(spec, outcome, started_unix_s, duration_s); called from one thread at a time."""

OUTPUT_TAIL_CHARS = 2000


class Executor(Protocol):
    def run(self, specs: Iterable[CellSpec], on_start: OnStart, on_done: OnDone) -> None: ...


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(bench.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the cell's whole process group (torch.compile spawns compile workers)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _died(proc: subprocess.Popen, output: str) -> CellOutcome:
    code = proc.returncode
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        how = f"killed by {name}" + (" (possibly the host out-of-memory killer)" if name == "SIGKILL" else "")
    else:
        how = f"exited with code {code}"
    tail = output[-OUTPUT_TAIL_CHARS:].strip()
    return CellOutcome(status="error", error=f"cell process {how} without a result; output: {tail}")


def run_cell_subprocess(spec: CellSpec, timeout_s: float,
                        env: Optional[dict[str, str]] = None) -> CellOutcome:
    """Run one cell in `python -m bench.sweep.cell` and return its outcome; never raises for cell failures.

    A timeout kills the process group and yields status 'timeout'. Ctrl-C (or any exception here) kills
    the child too, then propagates, so an interrupted sweep leaves no orphan measuring in the background.
    """
    with tempfile.TemporaryDirectory(prefix="bench-cell-") as tmp:
        spec_path, out_path = Path(tmp, "spec.json"), Path(tmp, "outcome.json")
        spec_path.write_text(spec.to_json())
        cmd = [sys.executable, "-m", "bench.sweep.cell", str(spec_path), str(out_path)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=_child_env(env or {}), start_new_session=True,
                                preexec_fn=die_with_parent())
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            return CellOutcome(status="timeout", error=f"cell exceeded the {timeout_s:g} s timeout; killed")
        except BaseException:
            _kill_group(proc)
            proc.wait()
            raise
        _kill_group(proc)
        if out_path.is_file():
            return CellOutcome.from_json(out_path.read_text())
        return _died(proc, output or "")


def visible_gpus() -> list[str]:
    """Indices of visible CUDA devices (honours an existing CUDA_VISIBLE_DEVICES)."""
    import torch

    if not torch.cuda.is_available():
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed:
        return [d.strip() for d in listed.split(",") if d.strip()][: torch.cuda.device_count()]
    return [str(i) for i in range(torch.cuda.device_count())]


class LocalExecutor:
    """Subprocess per cell; `slots` are env overrides, one worker thread per slot."""

    def __init__(self, slots: Sequence[dict[str, str]], timeout_s: float) -> None:
        if not slots:
            raise ValueError("LocalExecutor needs at least one slot")
        self.slots = list(slots)
        self.timeout_s = timeout_s

    @classmethod
    def for_device(cls, device_type: str, timeout_s: float) -> "LocalExecutor":
        gpus = visible_gpus() if device_type == "cuda" else []
        slots = [{"CUDA_VISIBLE_DEVICES": g} for g in gpus] or [{}]
        return cls(slots, timeout_s)

    def run(self, specs: Iterable[CellSpec], on_start: OnStart, on_done: OnDone) -> None:
        todo: queue.Queue = queue.Queue()
        for spec in specs:
            todo.put(spec)
        lock = threading.Lock()
        errors: list[BaseException] = []

        def worker(slot_index: int) -> None:
            while not errors:
                try:
                    spec = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    with lock:
                        on_start(spec, slot_index)
                    started = time.time()
                    outcome = run_cell_subprocess(spec, self.timeout_s, self.slots[slot_index])
                    with lock:
                        on_done(spec, outcome, started, time.time() - started)
                except BaseException as exc:  # surfaced in the main thread below
                    errors.append(exc)
                    return

        if len(self.slots) == 1:
            worker(0)
        else:
            threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(len(self.slots))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        if errors:
            raise errors[0]
