"""Conv + BatchNorm, the one-branch case: the building block of the ResNet baselines."""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from bench.reparam.algebra import KernelBias
from bench.reparam.base import ReparamBlock
from bench.reparam.fold import fold_conv_bn


class ConvBN(ReparamBlock):
    """`bn(conv(x))` with a bias-free conv; deploy form: one conv with bias under the same name `conv`.

    Folding is exact for any padding (DBB Transform I), so unlike the multi-branch blocks no padding
    rule applies. No activation: callers add their own.
    """

    deploy_attr = "conv"
    branch_attrs = ("conv", "bn")

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: Optional[int] = None,
        groups: int = 1,
        deploy: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.groups = kernel_size, stride, groups
        self.padding = kernel_size // 2 if padding is None else padding
        if deploy:
            self.conv = self._make_deploy_conv()
        else:
            self.conv = nn.Conv2d(
                in_channels, out_channels, kernel_size, stride, self.padding, groups=groups, bias=False
            )
            self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        bn = self._modules.get("bn")
        return x if bn is None else bn(x)

    def equivalent_kernel_bias(self) -> KernelBias:
        return fold_conv_bn(self.conv, self.bn)
