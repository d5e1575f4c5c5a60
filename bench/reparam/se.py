"""Squeeze-and-excitation as the re-parameterized families use it: kept as is in the deploy form (it is
not linear), so it only has to compute what the official blocks compute and load their keys."""

from __future__ import annotations

from typing import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from bench.usage import unknown


def _width_pool(x: Tensor) -> Tensor:
    return F.avg_pool2d(x, kernel_size=x.size(3))


SE_POOLING: dict[str, Callable[[Tensor], Tensor]] = {
    "width": _width_pool,
    "global": lambda x: F.adaptive_avg_pool2d(x, 1),
}
"""How the squeeze averages. "width" is the official RepVGG se_block.py: `avg_pool2d` with a square kernel
of the input's width, which on a non-square H x W map averages only the top W x W window (and fails
unless W <= H < 2W); equal to "global" on square maps. "global" averages the whole map (the official
MobileOne SE: `avg_pool2d` with kernel [H, W])."""


class SEBlock(nn.Module):
    """Squeeze-and-excitation as in RepVGG-D2se: average, 1x1 down, ReLU, 1x1 up, sigmoid, scale.

    `pooling` picks the average from `SE_POOLING`; the default "width" matches the official block on
    every input it accepts, so official checkpoints compute what they computed there. Subclasses rename
    the two convs (`conv_names`) for other official key layouts.
    """

    conv_names: tuple[str, str] = ("down", "up")

    def __init__(self, channels: int, internal_neurons: int, pooling: str = "width") -> None:
        super().__init__()
        if pooling not in SE_POOLING:
            raise unknown("SE pooling", pooling, SE_POOLING)
        self.pooling = pooling
        self.channels = channels
        down, up = self.conv_names
        setattr(self, down, nn.Conv2d(channels, internal_neurons, kernel_size=1, bias=True))
        setattr(self, up, nn.Conv2d(internal_neurons, channels, kernel_size=1, bias=True))

    def forward(self, x: Tensor) -> Tensor:
        down, up = (getattr(self, name) for name in self.conv_names)
        scale = SE_POOLING[self.pooling](x)
        scale = up(F.relu(down(scale))).sigmoid()
        return x * scale.view(-1, self.channels, 1, 1)


class MobileOneSE(SEBlock):
    """The official MobileOne SE: `reduce` / `expand` with int(C / 16) channels, averaged over the whole map."""

    conv_names = ("reduce", "expand")

    def __init__(self, channels: int, rd_ratio: float = 0.0625) -> None:
        super().__init__(channels, int(channels * rd_ratio), pooling="global")
