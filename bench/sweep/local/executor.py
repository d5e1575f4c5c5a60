"""Executors: where units of work run: worker processes on this machine (`LocalExecutor`) or on Ray nodes
(`bench.sweep.ray.executor.RayExecutor`).

`Executor.run(specs, on_start, on_done)` runs every `UnitSpec` (a cell or a train/deploy pair) and reports
each one's `UnitOutcome`; besides it the runner reads only `slots`, `tag` and `not_run`. Nothing about
rows or files leaks into it, so another executor (Slurm) only has to feed `python -m bench.sweep.worker.serve`
unit lines somewhere (or call `bench.sweep.worker.unit.run_unit` in a process of its own) and hand back the
outcomes. Units with the same `worker_key()` (model, runtime) may share a process.

`LocalExecutor`: one slot per visible GPU (each pinned with CUDA_VISIBLE_DEVICES, so a unit owns its
GPU), one slot on the CPU (parallel CPU cells would steal each other's cores and time nothing useful).
In a slot one worker serves a model's units in a row (`isolation="model"`) and is replaced after a
failure, a timeout or a crash, while a spare builds the next model; `isolation="cell"` starts a fresh
process for every unit. `Schedule` decides which slot runs which model's units.
`run_cell_subprocess` runs one `CellSpec` in `python -m bench.sweep.worker.probe` (the `--max-batch` probes).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Generic, Iterable, Optional, Protocol, Sequence, TypeVar

import bench
from bench.sweep.local.orphans import popen_contained, stop_tree
from bench.sweep.protocol import CellOutcome, CellSpec, UnitOutcome, UnitSpec

OnStart = Callable[[UnitSpec, int], None]
OnDone = Callable[[UnitSpec, UnitOutcome, float, float], None]
"""on_done(spec, outcome, started_unix_s, duration_s); called from one thread at a time."""

OUTPUT_TAIL_CHARS = 2000
G = TypeVar("G")


class Executor(Protocol):
    """Where units run. `slots`: one entry per unit that can run at once (the progress ETA divides by
    their count); `tag`: the prefix of its progress lines; `not_run`: after `run`, the units it gave
    back unrun, which get no row (the same command, run again, measures them)."""

    slots: Sequence[Any]
    tag: str
    not_run: list[UnitSpec]

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
    """Run one probe in `python -m bench.sweep.worker.probe` and return its outcome; never raises for cell failures.

    A timeout kills the probe and everything it started and yields status 'timeout'. Ctrl-C (or any
    exception here) kills them too, then propagates, so an interrupted sweep leaves no orphan measuring.
    """
    with tempfile.TemporaryDirectory(prefix="bench-cell-") as tmp:
        spec_path, out_path = Path(tmp, "spec.json"), Path(tmp, "outcome.json")
        spec_path.write_text(spec.to_json())
        cmd = [sys.executable, "-m", "bench.sweep.worker.probe", str(spec_path), str(out_path)]
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
"""`local`: `LocalExecutor` on this machine; `ray`: `bench.sweep.ray.executor.RayExecutor` per hardware kind."""


class Worker:
    """One `python -m bench.sweep.worker.serve` process, its log file and the (model, runtime) it serves."""

    def __init__(self, key: Optional[tuple], env: dict[str, str], folder: Path) -> None:
        self.key, self.env = key, dict(env)
        self.log_path = folder / f"worker-{len(list(folder.glob('worker-*')))}.log"
        self._log = open(self.log_path, "w")
        self.proc = popen_contained([sys.executable, "-m", "bench.sweep.worker.serve"], stdin=subprocess.PIPE,
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
        """Stop the worker and every process it started (`bench.sweep.local.orphans`)."""
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


class Schedule(Generic[G]):
    """Which group of units each slot of a `LocalExecutor` runs next; plain data, guarded by the caller.

    A group is the units of one (model, runtime), served in a row by one worker. A free slot takes, in
    order: the group it reserved; the next group nobody holds; a group another slot only reserved (that
    slot's spare worker built it ahead, but starting it now beats waiting until that slot's current
    group ends); else nothing, and the slot is done. A slot reserves the next group (`look_ahead`, so a
    spare worker builds that model while the slot measures) only while more groups wait than the other
    slots could take. So a free slot never finds the queue emptied by another slot's look-ahead, and a
    slot idles only once every group has started.
    """

    def __init__(self, groups: Iterable[G], n_slots: int) -> None:
        self.waiting: list[G] = list(groups)
        self.reserved: dict[int, G] = {}
        """Slot -> the group it reserved ahead, in the order they were reserved."""
        self.n_slots = n_slots

    def take(self, slot: int) -> Optional[G]:
        if slot in self.reserved:
            return self.reserved.pop(slot)
        if self.waiting:
            return self.waiting.pop(0)
        if self.reserved:
            return self.reserved.pop(next(iter(self.reserved)))
        return None

    def look_ahead(self, slot: int) -> Optional[G]:
        if slot in self.reserved or len(self.waiting) < self.n_slots:
            return None
        self.reserved[slot] = self.waiting.pop(0)
        return self.reserved[slot]


@dataclass
class _Shared:
    """What the slots of one `LocalExecutor.run` share; `lock` guards the schedule and the callbacks."""

    schedule: Schedule[list[UnitSpec]]
    on_start: OnStart
    on_done: OnDone
    lock: threading.Lock = field(default_factory=threading.Lock)
    errors: list[BaseException] = field(default_factory=list)


class _Slot:
    """One slot of a `LocalExecutor` (one GPU, or the CPU): the worker that measures, and under
    `isolation="model"` a spare that builds the next group's model while it does."""

    def __init__(self, index: int, env: dict[str, str], folder: Path, timeout_s: float, isolation: str,
                 spare: Optional[Worker] = None) -> None:
        self.index, self.env, self.folder = index, env, folder
        self.timeout_s, self.isolation = timeout_s, isolation
        self.worker: Optional[Worker] = None
        self.spare = spare

    def serve(self, shared: _Shared) -> None:
        """Run groups until the schedule has none left or a slot raised (kept in `shared.errors`)."""
        try:
            while not shared.errors:
                with shared.lock:
                    group = shared.schedule.take(self.index)
                if group is None:
                    return
                self._run_group(group, shared)
        except BaseException as exc:  # surfaced in the main thread by LocalExecutor.run
            shared.errors.append(exc)
        finally:
            for left in (self.worker, self.spare):
                if left is not None:
                    left.kill()

    def _run_group(self, group: list[UnitSpec], shared: _Shared) -> None:
        if self.spare is not None and not self.spare.serves(group[0].worker_key(), self.env):
            self.spare.kill()  # built for a group another slot took, or prestarted for another env
            self.spare = None
        for index, spec in enumerate(group):
            outcome_path = self.folder / f"outcome-{self.index}-{index}-{time.time_ns()}.json"
            spec = replace(spec, outcome_path=str(outcome_path))
            worker = self._worker_for(spec.worker_key())
            if index == 0:
                self._build_ahead(shared)
            with shared.lock:
                shared.on_start(spec, self.index)
            started = time.time()
            last = self.isolation == "cell" or index == len(group) - 1
            worker.send(spec, last)
            outcome = worker.wait(spec, self.timeout_s * len(spec.cells))
            if last or outcome.failed_any:
                worker.close()
                self.worker = None
            with shared.lock:
                shared.on_done(spec, outcome, started, time.time() - started)

    def _worker_for(self, key: tuple) -> Worker:
        """The live worker of `key`, else the spare where it serves `key`, else a new worker."""
        if self.worker is not None and (not self.worker.alive() or self.worker.key != key):
            self.worker.close()
            self.worker = None
        if self.worker is None:
            if self.spare is not None and self.spare.serves(key, self.env):
                self.worker, self.spare = self.spare, None
            else:
                self.worker = Worker(key, self.env, self.folder)
            self.worker.key = key
        return self.worker

    def _build_ahead(self, shared: _Shared) -> None:
        """The next model's worker imports torch and builds its forms while this one measures
        (docs/measurement.md: what runs beside a timed pair)."""
        if self.isolation != "model" or self.spare is not None:
            return
        with shared.lock:
            following = shared.schedule.look_ahead(self.index)
        if following:
            self.spare = Worker(following[0].worker_key(), self.env, self.folder)
            self.spare.prebuild(following[0])


class LocalExecutor:
    """Workers on this machine; `slots` are env overrides (one slot per GPU), one thread per slot."""

    tag = ""
    """Its progress lines carry no prefix."""

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
        self.not_run: list[UnitSpec] = []
        """Always empty: every unit runs, or `run` raises."""

    @classmethod
    def for_device(cls, device_type: str, timeout_s: float, isolation: str = "model",
                   env: Optional[dict[str, str]] = None, prestarted: Optional[Worker] = None) -> "LocalExecutor":
        gpus = visible_gpus() if device_type == "cuda" else []
        slots = [gpu_slot_env(g, env or {}) for g in gpus] or [dict(env or {})]
        return cls(slots, timeout_s, isolation, prestarted)

    def run(self, specs: Iterable[UnitSpec], on_start: OnStart, on_done: OnDone) -> None:
        """Run every unit; units of one (model, runtime) go to one slot in a row, so a worker serves them
        (which slot takes which group: `Schedule`)."""
        groups: dict[tuple, list[UnitSpec]] = {}
        for spec in specs:
            groups.setdefault(spec.worker_key(), []).append(spec)
        shared = _Shared(Schedule(groups.values(), len(self.slots)), on_start, on_done)
        first_spare, self.prestarted = self.prestarted, None
        with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
            slots = []
            for i, env in enumerate(self.slots):
                Path(tmp, str(i)).mkdir()
                slots.append(_Slot(i, env, Path(tmp, str(i)), self.timeout_s, self.isolation,
                                   first_spare if i == 0 else None))
            if len(slots) == 1:
                slots[0].serve(shared)
            else:
                threads = [threading.Thread(target=slot.serve, args=(shared,), daemon=True) for slot in slots]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
        if shared.errors:
            raise shared.errors[0]
