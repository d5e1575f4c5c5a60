"""Executors: where units of work run. Today local worker processes; the interface is two callbacks wide.

`Executor.run(specs, on_start, on_done)` runs every `UnitSpec` (a cell or a train/deploy pair) and reports
each one's `UnitOutcome`; nothing about rows or files leaks into it, so a Ray or Slurm executor only has
to feed `python -m bench.sweep.worker` unit lines somewhere (or call `bench.sweep.unit.run_unit` in a
process of its own) and hand back the outcomes. Units with the same `worker_key()` (model, runtime) may
share a process.

`LocalExecutor`: one slot per visible GPU (each pinned with CUDA_VISIBLE_DEVICES, so a unit owns its
GPU), one slot on the CPU (parallel CPU cells would steal each other's cores and time nothing useful).
In a slot one worker serves a model's units in a row (`isolation="model"`) and is replaced after a
failure, a timeout or a crash; `isolation="cell"` starts a fresh process for every unit.
`run_cell_subprocess` runs one `CellSpec` in `python -m bench.sweep.probe` (the `--max-batch` probes).
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable, Optional, Protocol, Sequence

import bench
from bench.sweep.orphans import popen_contained, stop_tree
from bench.sweep.protocol import CellOutcome, CellSpec, UnitOutcome, UnitSpec

OnStart = Callable[[UnitSpec, int], None]
OnDone = Callable[[UnitSpec, UnitOutcome, float, float], None]
"""on_done(spec, outcome, started_unix_s, duration_s); called from one thread at a time."""

OUTPUT_TAIL_CHARS = 2000


class Executor(Protocol):
    def run(self, specs: Iterable[UnitSpec], on_start: OnStart, on_done: OnDone) -> None: ...


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(bench.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


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
    """Run one probe in `python -m bench.sweep.probe` and return its outcome; never raises for cell failures.

    A timeout kills the probe and everything it started and yields status 'timeout'. Ctrl-C (or any
    exception here) kills them too, then propagates, so an interrupted sweep leaves no orphan measuring.
    """
    with tempfile.TemporaryDirectory(prefix="bench-cell-") as tmp:
        spec_path, out_path = Path(tmp, "spec.json"), Path(tmp, "outcome.json")
        spec_path.write_text(spec.to_json())
        cmd = [sys.executable, "-m", "bench.sweep.probe", str(spec_path), str(out_path)]
        proc = popen_contained(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=_child_env(env or {}))
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            stop_tree(proc)
            proc.communicate()
            return CellOutcome(status="timeout", error=f"cell exceeded the {timeout_s:g} s timeout; killed")
        except BaseException:
            stop_tree(proc)
            raise
        stop_tree(proc)
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


def gpu_slot_env(gpu: str, extra: dict[str, str]) -> dict[str, str]:
    """The env of a `LocalExecutor` slot that owns GPU `gpu` (an index or UUID as CUDA_VISIBLE_DEVICES
    lists it)."""
    return {"CUDA_VISIBLE_DEVICES": gpu, **extra}


def first_slot_env(device: Optional[str] = None, environ: Optional[dict[str, str]] = None,
                   nvidia_present: Optional[bool] = None) -> dict[str, str]:
    """The env of the first slot `LocalExecutor.for_device` will make, known before torch is imported (the
    prestart runs while it is): the first GPU CUDA_VISIBLE_DEVICES lists, else GPU 0 where an NVIDIA device
    node exists (`visible_gpus` numbers them from 0 then), else the CPU slot's empty env; the CPU slot's
    also when `device` is "cpu". A wrong guess costs only the overlap: the worker is not adopted."""
    environ = os.environ if environ is None else environ
    if device == "cpu":
        return {}
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed:
        entries = [d.strip() for d in listed.split(",") if d.strip()]
        return gpu_slot_env(entries[0], {}) if entries else {}
    if listed is None and (nvidia_present if nvidia_present is not None else _nvidia_device_present()):
        return gpu_slot_env("0", {})
    return {}


def _nvidia_device_present() -> bool:
    return any(Path("/dev").glob("nvidia[0-9]*"))


ISOLATIONS: tuple[str, ...] = ("model", "cell")
"""`model`: one persistent worker per model and runtime serves all its units, replaced after a failure;
`cell`: a fresh process for every unit of work (a pair or a lone cell), as before workers existed."""
POLL_S = 0.01
EXECUTORS: tuple[str, ...] = ("local", "ray")
"""`local`: `LocalExecutor` on this machine; `ray`: `bench.sweep.ray_executor.RayExecutor` per hardware kind."""


class Worker:
    """One `python -m bench.sweep.worker` process, its log file and the (model, runtime) it serves."""

    def __init__(self, key: Optional[tuple], env: dict[str, str], folder: Path) -> None:
        self.key, self.env = key, dict(env)
        self.log_path = folder / f"worker-{len(list(folder.glob('worker-*')))}.log"
        self._log = open(self.log_path, "w")
        self.proc = popen_contained([sys.executable, "-m", "bench.sweep.worker"], stdin=subprocess.PIPE,
                                    stdout=self._log, stderr=subprocess.STDOUT, text=True, env=_child_env(env))

    @classmethod
    def prestart(cls, device: Optional[str] = None) -> "Worker":
        """A worker for no model yet, started before the sweep is planned, so its torch import overlaps
        the parent's; the first slot of the `LocalExecutor` adopts it for its first unit when its env is
        that slot's (`first_slot_env`: on CUDA the slot pins its GPU, so a worker started without it would
        be killed and the first unit would start cold). `device`: the sweep's --device, if given."""
        return cls(None, first_slot_env(device), Path(tempfile.mkdtemp(prefix="bench-prestart-")))

    def serves(self, key: tuple, env: dict[str, str]) -> bool:
        return self.alive() and self.key in (None, key) and self.env == env

    def alive(self) -> bool:
        return self.proc.poll() is None

    def prebuild(self, spec: UnitSpec) -> None:
        """Have this (spare) worker build `spec`'s model forms now, ahead of its first unit."""
        self.send(replace(spec, prebuild=True, outcome_path=None), last=False)

    def send(self, spec: UnitSpec, last: bool) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(spec.to_json() + "\n")
        self.proc.stdin.flush()
        if last:
            self.proc.stdin.close()

    def wait(self, spec: UnitSpec, timeout_s: float) -> UnitOutcome:
        """The unit's outcome file, or a timeout / died outcome (the worker is killed then)."""
        path = Path(str(spec.outcome_path))
        deadline = time.monotonic() + timeout_s
        while True:
            if path.is_file():
                return UnitOutcome.from_json(path.read_text())
            if not self.alive():
                if path.is_file():
                    continue
                died = _died(self.proc, self.output())
                return UnitOutcome.failed(len(spec.cells), died.status, str(died.error))
            if time.monotonic() > deadline:
                self.kill()
                per_cell = timeout_s / len(spec.cells)
                return UnitOutcome.failed(len(spec.cells), "timeout", f"cell exceeded the {per_cell:g} s "
                                          f"timeout ({len(spec.cells)} cell(s) in the unit: {timeout_s:g} s); killed")
            time.sleep(POLL_S)

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """Stop the worker and every process it started (`bench.sweep.orphans`)."""
        stop_tree(self.proc)
        self._log.close()
        if self.log_path.parent.name.startswith("bench-prestart-"):
            shutil.rmtree(self.log_path.parent, ignore_errors=True)

    def close(self) -> None:
        """Let the worker leave on its own (end of its stdin), then make sure its tree is gone."""
        try:
            if self.proc.stdin is not None and not self.proc.stdin.closed:
                self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (subprocess.TimeoutExpired, OSError):
            pass
        self.kill()


class LocalExecutor:
    """Workers on this machine; `slots` are env overrides (one slot per GPU), one thread per slot."""

    def __init__(self, slots: Sequence[dict[str, str]], timeout_s: float, isolation: str = "model",
                 prestarted: Optional[Worker] = None) -> None:
        if not slots:
            raise ValueError("LocalExecutor needs at least one slot")
        if isolation not in ISOLATIONS:
            raise ValueError(f"isolation '{isolation}' is unknown; valid: {', '.join(ISOLATIONS)}")
        self.slots = list(slots)
        self.timeout_s = timeout_s
        self.isolation = isolation
        self.prestarted = prestarted

    @classmethod
    def for_device(cls, device_type: str, timeout_s: float, isolation: str = "model",
                   env: Optional[dict[str, str]] = None, prestarted: Optional[Worker] = None) -> "LocalExecutor":
        gpus = visible_gpus() if device_type == "cuda" else []
        slots = [gpu_slot_env(g, env or {}) for g in gpus] or [dict(env or {})]
        return cls(slots, timeout_s, isolation, prestarted)

    def run(self, specs: Iterable[UnitSpec], on_start: OnStart, on_done: OnDone) -> None:
        """Run every unit; units of one (model, runtime) go to one slot in a row, so a worker serves them."""
        groups: dict[tuple, list[UnitSpec]] = {}
        for spec in specs:
            groups.setdefault(spec.worker_key(), []).append(spec)
        todo: queue.Queue = queue.Queue()
        for group in groups.values():
            todo.put(group)
        lock = threading.Lock()
        errors: list[BaseException] = []
        first_spare, self.prestarted = self.prestarted, None

        def next_group() -> list[UnitSpec]:
            try:
                return todo.get_nowait()
            except queue.Empty:
                return []

        def work(slot_index: int, folder: Path) -> None:
            worker: Optional[Worker] = None
            spare = first_spare if slot_index == 0 else None
            try:
                group = next_group()
                while group and not errors:
                    following = next_group()
                    for index, spec in enumerate(group):
                        spec = replace(spec, outcome_path=str(folder / f"outcome-{slot_index}-{index}-"
                                                          f"{time.time_ns()}.json"))
                        if worker is not None and (not worker.alive() or worker.key != spec.worker_key()):
                            worker.close()
                            worker = None
                        if worker is None:
                            usable = spare is not None and spare.serves(spec.worker_key(), self.slots[slot_index])
                            worker = spare if usable else Worker(spec.worker_key(), self.slots[slot_index], folder)
                            worker.key = spec.worker_key()
                            spare = spare if not usable else None
                            if spare is not None and spare.key is None:  # prestarted for another env
                                spare.kill()
                                spare = None
                        if index == 0 and following and spare is None and self.isolation == "model":
                            # the next model's worker imports torch and builds its forms while this one
                            # measures (docs/measurement.md: what runs beside a timed pair)
                            spare = Worker(following[0].worker_key(), self.slots[slot_index], folder)
                            spare.prebuild(following[0])
                        with lock:
                            on_start(spec, slot_index)
                        started = time.time()
                        last = self.isolation == "cell" or index == len(group) - 1
                        worker.send(spec, last)
                        outcome = worker.wait(spec, self.timeout_s * len(spec.cells))
                        if last or outcome.failed_any:
                            worker.close()
                            worker = None
                        with lock:
                            on_done(spec, outcome, started, time.time() - started)
                    group = following
            except BaseException as exc:  # surfaced in the main thread below
                errors.append(exc)
            finally:
                for left in (worker, spare):
                    if left is not None:
                        left.kill()

        with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
            folders = [Path(tmp, str(i)) for i in range(len(self.slots))]
            for folder in folders:
                folder.mkdir()
            if len(self.slots) == 1:
                work(0, folders[0])
            else:
                threads = [threading.Thread(target=work, args=(i, folders[i]), daemon=True)
                           for i in range(len(self.slots))]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
        if errors:
            raise errors[0]
