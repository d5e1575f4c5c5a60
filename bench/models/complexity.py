"""Static size of a model: parameters and multiply-accumulates per image, counted without running it.

MACs come from `bench.measure.flops.count_macs` (the light torch-function-level counter, tested equal to
`torch.utils.flop_counter.FlopCounterMode` on every registered model, without its import of dynamo;
FLOPs / 2; convolutions and matmuls, no bias adds, pooling or activations: the convention of the RepVGG
paper's "FLOPs"). Both counts are taken
on the meta device, where no memory is allocated and no arithmetic done, so even RepVGG-B3 costs
milliseconds; a model that cannot be built there is built on the CPU instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bench.measure.flops import count_macs
from bench.models.registry import create


@dataclass(frozen=True)
class Complexity:
    params: int
    macs: int
    resolution: int


def count_params(model: nn.Module) -> int:
    """Parameters (not buffers): BN running statistics are state, not weights."""
    return sum(p.numel() for p in model.parameters())


def _measure(name: str, deploy: bool, resolution: int, device: str, **kwargs) -> Complexity:
    with torch.device(device):
        model = create(name, deploy=deploy, **kwargs).eval()
        example = torch.zeros(1, 3, resolution, resolution)
    return Complexity(count_params(model), count_macs(model, example), resolution)


def model_complexity(name: str, deploy: bool = True, resolution: int = 224, **kwargs) -> Complexity:
    """Parameters and MACs per image of registry model `name` (deploy form by default)."""
    try:
        return _measure(name, deploy, resolution, "meta", **kwargs)
    except (NotImplementedError, RuntimeError):
        return _measure(name, deploy, resolution, "cpu", **kwargs)
