"""Random BN statistics, so that a deploy-vs-train comparison actually exercises the BN fold.

Fresh BatchNorm layers (mean 0, var 1, gamma 1, beta 0) are the identity up to eps: a fold that ignores
the mean, swaps gamma and beta, or drops eps still looks right on them. Shared by the tests, the
`verify` command and the sweep's correctness gate.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

BN_RANGES: dict[str, tuple[float, float]] = {
    "running_mean": (-0.5, 0.5),
    "running_var": (0.5, 2.0),
    "weight": (0.5, 1.5),
    "bias": (-0.5, 0.5),
}
"""Uniform ranges per BN tensor: variances away from 0 and gammas around 1 keep deep nets' activations
within a few orders of magnitude, so a relative error stays meaningful."""


def _uniform_(tensor: torch.Tensor, low: float, high: float, generator: torch.Generator) -> None:
    values = torch.rand(tensor.shape, generator=generator, dtype=torch.float64) * (high - low) + low
    tensor.copy_(values.to(device=tensor.device, dtype=tensor.dtype))


@torch.no_grad()
def randomize_bn_(model: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """In place: every BN gets uniform random running_mean, running_var, weight and bias (`BN_RANGES`);
    every all-zero conv weight (e.g. DBB's identity-based 1x1 residual) gets U(-0.1, 0.1). Returns `model`.

    Draws on the CPU from `generator` (default: seed 0), so the result does not depend on the device.
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            for name, (low, high) in BN_RANGES.items():
                tensor = getattr(module, name, None)
                if tensor is not None:
                    _uniform_(tensor, low, high, generator)
        elif isinstance(module, nn.Conv2d) and not module.weight.any():
            _uniform_(module.weight, -0.1, 0.1, generator)
    return model
