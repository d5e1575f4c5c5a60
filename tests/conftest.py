"""Shared test fixtures: random weights AND random BN statistics, so that folding is really exercised."""

from __future__ import annotations

import torch
from torch import nn


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BN random running statistics and affine parameters, and every zero conv random weights.

    Fresh BN layers (mean 0, var 1, gamma 1, beta 0) make a wrong fold look right; this does not.
    """
    generator = torch.Generator().manual_seed(seed)

    def uniform(tensor: torch.Tensor, low: float, high: float) -> None:
        values = torch.rand(tensor.shape, generator=generator, dtype=torch.float64) * (high - low) + low
        tensor.copy_(values.to(tensor.dtype))

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                uniform(module.running_mean, -0.5, 0.5)
                uniform(module.running_var, 0.5, 2.0)
                if module.weight is not None:
                    uniform(module.weight, 0.5, 1.5)
                    uniform(module.bias, -0.5, 0.5)
            elif isinstance(module, nn.Conv2d) and not module.weight.any():
                uniform(module.weight, -0.1, 0.1)
    return model
