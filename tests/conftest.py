"""Shared test helpers."""

from __future__ import annotations

import torch
from torch import nn

from bench.models.init import randomize_bn_


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN statistics and affine parameters (and random zero convs), reproducibly from `seed`."""
    return randomize_bn_(model, torch.Generator().manual_seed(seed))
