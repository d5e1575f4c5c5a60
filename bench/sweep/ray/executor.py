"""`RayExecutor`: the units of one hardware kind as Ray tasks on the nodes labelled with it.

Every unit is one task (`bench.sweep.ray.node.run_unit_on_node`) with the resources of its kind
(`HardwareKind.task_options`); Ray queues them and starts each where its resources are free. The outcome
comes back to the driver, which hands it to `on_done` like the local executor, so rows, resume and
reports do not know where a unit ran.

Faults: a task whose Ray worker or node dies is retried once by Ray (`max_retries=1`), on another node of
the kind if there is one; a unit lost twice becomes an error row naming the Ray error. When no alive
node of the kind is left, the units not yet finished are cancelled and get no row (`not_run`), so the
same command, run again once the nodes are back, measures them (a resume).

Stopping: when the driver is told to stop (Ctrl-C, SIGTERM: `stop` is set), the executor cancels the
units in flight and raises `Stopped` within `POLL_S`, so the sweep's writer flushes the finished rows into
the run's tables before the driver leaves.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Iterable, Optional

from bench.sweep.local.executor import OnDone, OnStart
from bench.sweep.protocol import UnitOutcome, UnitSpec
from bench.sweep.ray.cluster import HardwareKind, alive, import_ray
from bench.sweep.ray.node import Expected, NodeResult, run_unit_on_node

if TYPE_CHECKING:
    from types import ModuleType
    from ray import ObjectRef
    from ray.remote_function import RemoteFunction

MAX_RETRIES = 1
POLL_S = 1.0
"""How often the driver checks, while no unit ends, that a node of the kind is still alive and that it
was not told to stop."""

_remote: Optional[RemoteFunction] = None
_REPORTING = threading.Lock()
"""Held while a unit's progress lines print, so the lines of kinds swept side by side do not interleave."""


class Stopped(Exception):
    """The driver was told to stop; the units in flight were cancelled and get no row."""


def _task() -> RemoteFunction:
    global _remote
    if _remote is None:
        _remote = import_ray().remote(max_retries=MAX_RETRIES)(run_unit_on_node)
    return _remote


class RayExecutor:
    """Units of one hardware kind on its Ray nodes (a `bench.sweep.local.executor.Executor`): `slots` one entry
    per node, `tag` the kind's name, `not_run` the units cancelled when no node of the kind was left."""

    def __init__(self, kind: HardwareKind, device: str, timeout_s: float, isolation: str = "model",
                 expected: Optional[Expected] = None, env: Optional[dict[str, str]] = None,
                 stop: Optional[threading.Event] = None) -> None:
        self.kind, self.device, self.timeout_s, self.isolation = kind, device, timeout_s, isolation
        self.stop = stop or threading.Event()
        self.expected = expected or Expected.here()
        self.env = dict(env or {})
        self.options = kind.task_options(device)
        self.slots = [None] * kind.nodes
        self.tag = f"{kind.hardware}: "
        self.not_run: list[UnitSpec] = []

    def run(self, specs: Iterable[UnitSpec], on_start: OnStart, on_done: OnDone) -> None:
        ray = import_ray()
        task = _task().options(**self.options)
        pending = {task.remote(spec, self.timeout_s, self.isolation, self.expected, self.env): spec for spec in specs}
        try:
            while pending:
                if self.stop.is_set():
                    raise Stopped(f"{len(pending)} unit(s) of hardware '{self.kind.hardware}' cancelled")
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    spec = pending.pop(ref)
                    result = self._result(ray, ref, spec)
                    with _REPORTING:
                        on_start(spec, 0)
                        on_done(spec, result.outcome, result.started_unix_s, result.duration_s)
                if not ready and not alive(ray, self.kind.hardware):
                    self.not_run = list(pending.values())
                    break
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def _result(self, ray: ModuleType, ref: ObjectRef, spec: UnitSpec) -> NodeResult:
        """The node's result, or an error outcome for a unit Ray lost twice (worker or node died)."""
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as exc:
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            error = (f"lost on hardware '{self.kind.hardware}' after {MAX_RETRIES} retry: "
                     f"{type(exc).__name__}: {first}")
            return NodeResult(outcome=UnitOutcome.failed(len(spec.cells), "error", error),
                              started_unix_s=time.time(), duration_s=0.0, node="")
