"""Key renames from other codebases' checkpoints to this project's (official) layouts.

timm's RepVGG (`timm/models/byobnet.py`) names the same tensors differently; seven renames map its keys
onto the official RepVGG layout, after which loading is checked strictly like any other checkpoint:
stem -> stage0, stages.i -> stage{i+1}, conv_kxk -> rbr_dense, conv_1x1 -> rbr_1x1,
identity -> rbr_identity, reparam_conv -> rbr_reparam, head.fc -> linear.
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor

from bench.usage import unknown

TIMM_SEGMENTS: dict[str, str] = {
    "conv_kxk": "rbr_dense", "conv_1x1": "rbr_1x1", "identity": "rbr_identity", "reparam_conv": "rbr_reparam",
}


def timm_key(key: str) -> str:
    """One timm RepVGG key in the official layout (e.g. stages.0.1.conv_kxk.bn.weight ->
    stage1.1.rbr_dense.bn.weight)."""
    parts = key.split(".")
    if parts[0] == "stem":
        parts[0] = "stage0"
    elif parts[0] == "stages" and len(parts) > 1 and parts[1].isdigit():
        parts = [f"stage{int(parts[1]) + 1}"] + parts[2:]
    elif parts[:2] == ["head", "fc"]:
        parts = ["linear"] + parts[2:]
    return ".".join(TIMM_SEGMENTS.get(part, part) for part in parts)


def _official(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return state


def _timm(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {timm_key(key): value for key, value in state.items()}


SOURCES: dict[str, Callable[[dict[str, Tensor]], dict[str, Tensor]]] = {"official": _official, "timm": _timm}
"""Checkpoint source -> key mapping onto this project's layout ("official": as saved by the official code
or by this project)."""


def map_keys(state: dict[str, Tensor], source: str) -> dict[str, Tensor]:
    if source not in SOURCES:
        raise unknown("checkpoint source", source, SOURCES)
    return SOURCES[source](state)
