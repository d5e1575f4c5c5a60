"""What runs on a Ray node: one unit of work in a `python -m bench.sweep.worker.serve` process, as locally.

A Ray task hands the unit to a worker process (`bench.sweep.local.executor.Worker`, the local executor's own),
waits for its outcome file under the same timeout and returns the `UnitOutcome` to the driver, which
alone writes rows. A crash, OOM or timeout of the unit is an outcome (the worker is replaced), never a
failed Ray task; only the loss of the Ray worker or its node fails the task, and Ray retries it once.
The worker process outlives the task: the next unit of the same model and runtime that lands on this Ray
worker process reuses it (torch imported and the model built once), as `--isolation model` does locally.

A node whose software differs from the driver's (torch, Python) measures something else: its units
become error rows naming both versions, and the sweep goes on.

`python -m bench.sweep.ray.node` prints the `--resources` flag that labels this machine for `ray start`.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from bench.sweep.protocol import UnitOutcome, UnitSpec

if TYPE_CHECKING:
    from bench.sweep.local.executor import Worker

_worker: Optional[Worker] = None
"""The worker process kept between tasks on this Ray worker process (a `bench.sweep.local.executor.Worker`)."""
_folder: Optional[Path] = None
"""Its log and outcome files: one temporary folder per Ray worker process."""


@dataclass(frozen=True)
class Expected:
    """The driver's software; a node that differs yields error rows instead of measurements."""

    torch_version: str
    python_version: str

    @classmethod
    def here(cls) -> "Expected":
        import torch

        return cls(torch_version=str(torch.__version__), python_version=platform.python_version())

    def mismatch(self) -> Optional[str]:
        """What differs on this node, as a row's error; None when it matches."""
        here = Expected.here()
        diffs = [f"{name.split('_')[0]} {getattr(here, name)} here, {getattr(self, name)} on the driver"
                 for name in ("torch_version", "python_version") if getattr(here, name) != getattr(self, name)]
        if not diffs:
            return None
        return (f"node {socket.gethostname()} runs other software than the driver ({'; '.join(diffs)}); "
                "install the driver's versions on every node")


@dataclass(frozen=True)
class NodeResult:
    """A unit's outcome as measured on a node, with when it ran there and where."""

    outcome: UnitOutcome
    started_unix_s: float
    duration_s: float
    node: str


def run_unit_on_node(spec: UnitSpec, timeout_s: float, isolation: str, expected: Expected,
                     env: Optional[dict[str, str]] = None) -> NodeResult:
    """The body of the Ray task: the unit in a worker process (with `env` set), with this machine's load
    on its rows."""
    from bench.measure.env import machine_load

    started = time.time()
    problem = expected.mismatch()
    if problem:
        outcome = UnitOutcome.failed(len(spec.cells), "error", problem)
    else:
        outcome = _in_worker(spec, timeout_s, isolation, env or {})
    load = machine_load()
    for cell in outcome.cells:
        cell.fields.update(load)
    return NodeResult(outcome=outcome, started_unix_s=started, duration_s=time.time() - started,
                      node=socket.gethostname())


def _in_worker(spec: UnitSpec, timeout_s: float, isolation: str, env: dict[str, str]) -> UnitOutcome:
    global _worker, _folder
    from bench.sweep.local.executor import Worker

    gpus = os.environ.get("CUDA_VISIBLE_DEVICES")
    env = {**env, **({"CUDA_VISIBLE_DEVICES": gpus} if gpus is not None else {})}
    if _worker is not None and not _worker.serves(spec.worker_key(), env):
        _worker.close()
        _worker = None
    _folder = _folder or Path(tempfile.mkdtemp(prefix="bench-ray-worker-"))
    if _worker is None:
        _worker = Worker(spec.worker_key(), env, _folder)
    spec = replace(spec, outcome_path=str(_folder / f"outcome-{time.time_ns()}.json"))
    last = isolation == "cell"
    _worker.send(spec, last)
    outcome = _worker.wait(spec, timeout_s * len(spec.cells))
    Path(str(spec.outcome_path)).unlink(missing_ok=True)
    if last or outcome.failed_any:
        _worker.close()
        _worker = None
    return outcome


def node_environment() -> dict[str, Any]:
    """The body of the Ray task that fingerprints a node for its hardware's `env.json`."""
    from bench.measure.env import run_environment

    return {**run_environment(), "ray_node": socket.gethostname()}


def resources_flag(hardware: str) -> str:
    return "--resources=" + json.dumps({f"hw:{hardware}": 1}, separators=(",", ":"))


def main() -> int:
    from bench.measure.env import hardware_slug
    import torch

    print(resources_flag(hardware_slug("cuda" if torch.cuda.is_available() else "cpu")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
