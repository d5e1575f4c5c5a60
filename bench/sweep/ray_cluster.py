"""A Ray cluster as hardware kinds: which kinds its nodes offer, and what a unit of work asks Ray for.

A node says what it is with a Ray custom resource named after the project's hardware id,
`hw:<hardware id>` (`ray start ... --resources '{"hw:nvidia-h200-141gb": 1}'`; `python -m
bench.sweep.ray_node` prints the flag for the machine it runs on). Rows of units placed on that resource
land in `results/<hardware id>/`, so the id in the label decides the folder: label a node with its own id.

What a unit asks for: on CUDA one GPU (`num_gpus=1`, Ray pins it with CUDA_VISIBLE_DEVICES); on the CPU
every CPU of a node of that kind (the fewest any of its nodes has), so two CPU units never share cores.
Ray is an optional extra: without it, `import_ray` raises `RayMissing` naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import bench
from bench.sweep.axes import ConfigError

HW_PREFIX = "hw:"
RAY_EXTRA = 'pip install -e ".[ray]"'
PLACEMENT_SHARE = 0.001
"""How much of a node's `hw:` resource a unit takes: a marker for placement, never the limit (CPUs or
GPUs are)."""


class RayMissing(ConfigError):
    """`--executor ray` without Ray installed."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RayMissing(f"--executor ray needs Ray, which is not installed ({exc}); install the extra: "
                         f"{RAY_EXTRA}") from None
    return ray


@dataclass(frozen=True)
class HardwareKind:
    """The alive nodes that carry one `hw:` label: how many, and the fewest CPUs and GPUs any of them has."""

    hardware: str
    nodes: int
    cpus: int
    gpus: int

    @property
    def resource(self) -> str:
        return HW_PREFIX + self.hardware

    def device(self, requested: str) -> str:
        """The config's device on this kind: 'auto' is CUDA where the nodes have GPUs."""
        if requested == "cuda" and self.gpus == 0:
            raise ConfigError(f"device 'cuda' requested but the nodes of hardware '{self.hardware}' have no "
                              "GPU in Ray; use --device cpu or auto, or another --hardware")
        if requested == "auto":
            return "cuda" if self.gpus > 0 else "cpu"
        return requested

    def task_options(self, device: str) -> dict[str, Any]:
        """`ray.remote(...).options(**this)` for one unit on this kind."""
        if device == "cuda":
            return {"num_gpus": 1, "num_cpus": min(1, self.cpus), "resources": {self.resource: PLACEMENT_SHARE}}
        if self.cpus < 1:
            raise ConfigError(f"the nodes of hardware '{self.hardware}' offer no CPU to Ray; start them with "
                              "--num-cpus N")
        return {"num_cpus": self.cpus, "num_gpus": 0, "resources": {self.resource: PLACEMENT_SHARE}}


def connect(address: Optional[str]) -> Any:
    """Join the cluster at `address` ('auto': the one `ray start` began on this machine; `ray://HOST:PORT`:
    a remote one through Ray Client), shipping this checkout's `bench` package to the workers so they run
    the driver's code. A process already connected stays connected."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    package = str(Path(bench.__file__).resolve().parent)
    try:
        ray.init(address=address or "auto", log_to_driver=False, logging_level="WARNING",
                 runtime_env={"py_modules": [package], "excludes": ["__pycache__", "*.pyc"]})
    except ConnectionError as exc:
        raise ConfigError(f"no Ray cluster at '{address or 'auto'}' ({exc}); start one with `ray start --head`"
                          " (see the README) or pass --address ray://HOST:10001") from None
    return ray


def kinds(nodes: Sequence[dict[str, Any]]) -> dict[str, HardwareKind]:
    """Hardware kinds of the alive nodes in `ray.nodes()`, by id."""
    found: dict[str, list[dict[str, float]]] = {}
    for node in nodes:
        if not node.get("Alive"):
            continue
        resources = node.get("Resources", {})
        for name, amount in resources.items():
            if name.startswith(HW_PREFIX) and amount > 0:
                found.setdefault(name[len(HW_PREFIX):], []).append(resources)
    return {hw: HardwareKind(hardware=hw, nodes=len(rs), cpus=int(min(r.get("CPU", 0) for r in rs)),
                             gpus=int(min(r.get("GPU", 0) for r in rs)))
            for hw, rs in sorted(found.items())}


def select(available: dict[str, HardwareKind], requested: Optional[Sequence[str]]) -> list[HardwareKind]:
    """The kinds to sweep: those requested (every one must be in the cluster), else all of them."""
    if not available:
        raise ConfigError(f"no alive node of the Ray cluster carries a '{HW_PREFIX}<hardware id>' resource; "
                          "start workers with `ray start --address HEAD:6379 $(python -m bench.sweep.ray_node)`")
    if not requested:
        return list(available.values())
    unknown = [hw for hw in requested if hw not in available]
    if unknown:
        raise ConfigError(f"hardware {', '.join(repr(u) for u in unknown)} is not in the Ray cluster; "
                          f"available: {', '.join(available)}")
    return [available[hw] for hw in dict.fromkeys(requested)]


def alive(ray: Any, hardware: str) -> bool:
    """Whether any alive node still carries this kind's label."""
    return hardware in kinds(ray.nodes())
