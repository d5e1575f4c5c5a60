"""Conv + BatchNorm, the one-branch case: the building block of the ResNet baselines and of every
multi-branch block's branches."""

from __future__ import annotations

from torch import Tensor, nn

from bench.reparam.algebra import KernelBias, pad_kernel
from bench.reparam.base import ReparamBlock
from bench.reparam.fold import fold_conv_bn


class ConvBN(ReparamBlock):
    """`bn(conv(x))` with a bias-free conv; deploy form: one conv with bias under the same name `conv`.

    Folding is exact for any padding (DBB Transform I), so unlike the multi-branch blocks no padding
    rule applies. No activation: callers add their own.
    """

    deploy_attr = "conv"
    branch_attrs = ("conv", "bn")

    @staticmethod
    def lowest_padding(kernel_size: int) -> int:
        return 0

    def _build_branches(self) -> None:
        self.conv = nn.Conv2d(
            self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
            groups=self.groups, bias=False,
        )
        self.bn = nn.BatchNorm2d(self.out_channels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        bn = self._modules.get("bn")
        return x if bn is None else bn(x)

    def equivalent_kernel_bias(self) -> KernelBias:
        return fold_conv_bn(self.conv, self.bn)


def branch_conv_bn(block: ReparamBlock, kernel_size: int | None = None) -> ConvBN:
    """A conv+BN branch of `block`: its channels, stride and groups, and a (smaller) centred kernel whose
    padding is reduced so that its output lines up with the kxk branch's (RepVGG's 1x1 branch)."""
    k = block.kernel_size if kernel_size is None else kernel_size
    padding = block.padding - (block.kernel_size // 2 - k // 2)
    return ConvBN(block.in_channels, block.out_channels, k, block.stride, padding, block.groups)


def padded_kernel_bias(branch: ConvBN, size: int) -> KernelBias:
    """A centred branch's folded (K, b), its kernel zero-padded to size x size (RepVGG 1x1 -> 3x3)."""
    kernel, bias = branch.equivalent_kernel_bias()
    return pad_kernel(kernel, size), bias
