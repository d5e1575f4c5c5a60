"""Fault injection for tests: real failures, triggered inside a cell by a `[[fault]]` config entry.

Every fault does something real (allocates an impossible tensor, sleeps past the timeout, feeds a wrong
shape, perturbs the deploy weights, aborts the process) so the tests exercise the same code paths as a
genuine OOM, hang, bug or bad conversion. Never used by the shipped presets.

A fault runs at one phase of the cell: `start` (nothing built yet), `deploy` (gets the deploy-form model
before the correctness gate, may change it in place), `workload` (gets the device, runs just before
timing).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import torch

PHASES: tuple[str, ...] = ("start", "deploy", "workload")
FAULTS: dict[str, tuple[str, Callable[..., None]]] = {}

IMPOSSIBLE_BYTES = 2**48
"""256 TiB: more than any host or GPU has, and above the 47-bit user address space, so the allocator
fails for real (CPU: RuntimeError "can't allocate memory"; CUDA: torch.OutOfMemoryError)."""


def register(kind: str, phase: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    if phase not in PHASES:
        raise ValueError(f"phase '{phase}' is unknown; valid: {', '.join(PHASES)}")

    def wrap(fn: Callable[..., None]) -> Callable[..., None]:
        FAULTS[kind] = (phase, fn)
        return fn

    return wrap


@register("oom", "workload")
def _oom(device: torch.device) -> None:
    import torch

    torch.empty(IMPOSSIBLE_BYTES, dtype=torch.uint8, device=device)


@register("hang", "start")
def _hang() -> None:
    time.sleep(10**6)


@register("slow", "start")
def _slow() -> None:
    time.sleep(3.0)


@register("error", "workload")
def _error(device: torch.device) -> None:
    import torch

    torch.nn.functional.conv2d(torch.ones(1, 5, 4, 4, device=device), torch.ones(3, 3, 3, 3, device=device))


@register("crash", "start")
def _crash() -> None:
    os.abort()


@register("perturb_deploy", "deploy")
def _perturb_deploy(model: torch.nn.Module) -> None:
    """Add noise of 10% of each weight's scale to every conv in the deploy form: a broken conversion."""
    import torch

    generator = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                w = module.weight
                noise = torch.randn(w.shape, generator=generator).to(w.device, w.dtype)
                w.add_(0.1 * w.abs().mean() * noise)


def trigger(kinds: list[str], phase: str, *args: Any) -> None:
    """Run the faults of `kinds` that belong to `phase`."""
    for kind in kinds:
        fault_phase, fn = FAULTS[kind]
        if fault_phase == phase:
            fn(*args)
