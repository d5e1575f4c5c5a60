"""A Ray cluster as hardware kinds: which kinds its nodes offer, and what a unit of work asks Ray for.

A node says what it is with a Ray custom resource named after the project's hardware id,
`hw:<hardware id>` (`ray start ... --resources '{"hw:nvidia-h200-141gb": 1}'`; `python -m
bench.sweep.ray.node` prints the flag for the machine it runs on). Rows of units placed on that resource
land in `results/<hardware id>/`, so the id in the label decides the folder: label a node with its own id.

What a unit asks for: on CUDA one GPU (`num_gpus=1`, Ray pins it with CUDA_VISIBLE_DEVICES); on the CPU
every CPU of a node of that kind (the fewest any of its nodes has), so two CPU units never share cores.
Ray is an optional extra: without it, `import_ray` raises `RayMissing` naming it.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

import bench
from bench.sweep.plan.axes import ConfigError

if TYPE_CHECKING:
    from types import ModuleType

HW_PREFIX = "hw:"
RAY_EXTRA = 'pip install -e ".[ray]"'
CONNECT_TIMEOUT_S = 10.0
"""How long `connect` waits for the cluster's address to accept a connection (Ray itself retries an
address that does not answer for many minutes)."""
SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray's multi-node switch; off, Ray keeps a loopback address instead of the machine's interface address."""
PLACEMENT_SHARE = 0.001
"""How much of a node's `hw:` resource a unit takes: a marker for placement, never the limit (CPUs or
GPUs are)."""


class RayMissing(ConfigError):
    """`--executor ray` without Ray installed."""


def import_ray() -> ModuleType:
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


def connect(address: Optional[str]) -> ModuleType:
    """Join the cluster at `address` ('auto': the one `ray start` began on this machine; `ray://HOST:PORT`:
    a remote one through Ray Client), shipping this checkout's `bench` package to the workers so they run
    the driver's code. A process already connected stays connected.

    The address must accept a TCP connection within `CONNECT_TIMEOUT_S`, else `ConfigError` (no Ray
    cluster); a cluster on a loopback address is joined on loopback (`stay_on_loopback`). `ray.init`
    replaces the SIGTERM handler with one that exits at once; the caller's is put back, so a SIGTERM'd
    driver stops as orderly as a local sweep (`bench.sweep.driver.signals`)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    target = address or "auto"
    host_port = _bootstrap_address(ray, target)
    if host_port is not None:
        host, port = host_port
        if _is_loopback(host):
            stay_on_loopback(ray)
        problem = _unreachable(host, port)
        if problem:
            raise ConfigError(_no_cluster(target, problem))
    package = str(Path(bench.__file__).resolve().parent)
    on_sigterm = signal.getsignal(signal.SIGTERM)
    try:
        ray.init(address=target, log_to_driver=False, logging_level="WARNING",
                 runtime_env={"py_modules": [package], "excludes": ["__pycache__", "*.pyc"]})
    except ConnectionError as exc:
        raise ConfigError(_no_cluster(target, str(exc))) from None
    finally:
        if threading.current_thread() is threading.main_thread() and on_sigterm is not None:
            signal.signal(signal.SIGTERM, on_sigterm)
    return ray


def _no_cluster(address: str, why: str) -> str:
    return (f"no Ray cluster at '{address}' ({why}); start one with `ray start --head` (see docs/ray.md) or "
            "pass --address HOST:6379 or ray://HOST:10001")


def _bootstrap_address(ray: ModuleType, address: str) -> Optional[tuple[str, int]]:
    """(host, port) that `address` names ('auto': the one Ray recorded on this machine, or RAY_ADDRESS);
    None when there is none to check (Ray then says so itself, at once)."""
    if address == "auto":
        try:
            address = ray._private.services.get_ray_address_from_environment("auto", None) or ""
        except (AttributeError, TypeError, OSError):
            return None
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _unreachable(host: str, port: int) -> Optional[str]:
    """Why nothing accepts a connection at host:port within `CONNECT_TIMEOUT_S`, or None if something does."""
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            return None
    except socket.timeout:
        return f"nothing answered within {CONNECT_TIMEOUT_S:g} s"
    except OSError as exc:
        return exc.strerror or str(exc)


def stay_on_loopback(ray: ModuleType) -> None:
    """Keep this process, and the Ray processes it starts, on 127.0.0.1.

    Ray replaces a loopback address, its own and a cluster's, with the machine's interface address
    (`ray._private.services.resolve_ip_for_localhost`) unless its multi-node switch is off: a driver told
    127.0.0.1:6379 would then talk to the machine's network address. A cluster on loopback is one machine,
    so the switch goes off, for this process (Ray read it at import) and through the environment for its
    children."""
    os.environ[SINGLE_MACHINE_ENV] = "0"
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False


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
                          "start workers with `ray start --address HEAD:6379 $(python -m bench.sweep.ray.node)`")
    if not requested:
        return list(available.values())
    unknown = [hw for hw in requested if hw not in available]
    if unknown:
        raise ConfigError(f"hardware {', '.join(repr(u) for u in unknown)} is not in the Ray cluster; "
                          f"available: {', '.join(available)}")
    return [available[hw] for hw in dict.fromkeys(requested)]


def alive(ray: ModuleType, hardware: str) -> bool:
    """Whether any alive node still carries this kind's label."""
    return hardware in kinds(ray.nodes())
