"""Asymmetric Convolution Block (Ding et al., "ACNet", ICCV 2019, Sec. 3).

Training form: kxk, kx1 and 1xk convs, each with its own BN, summed. By additivity of convolution the
kx1 and 1xk kernels (BN-folded) add onto the skeleton (centre column and row) of the kxk kernel.
For padding < k // 2 the side branches read a cropped input (the official ACNet's CropLayer): the kx1
branch drops c = k // 2 - padding columns on each side, the 1xk branch c rows, so each still sees the
centre column / row of the kxk window. A drop-in for conv+BN: no activation. Names follow the official
ACNet code (`square_conv`, `ver_bn`, ..., deploy `fused_conv`).
"""

from __future__ import annotations

from torch import Tensor, nn

from bench.reparam.algebra import KernelBias, add_branches, pad_kernel
from bench.reparam.base import ReparamBlock
from bench.reparam.fold import fold_conv_bn


class ACBlock(ReparamBlock):
    """kxk + kx1 + 1xk conv+BN branches; folds to one kxk conv for padding 0 .. any."""

    deploy_attr = "fused_conv"
    branch_attrs = ("square_conv", "square_bn", "ver_conv", "ver_bn", "hor_conv", "hor_bn")

    @staticmethod
    def lowest_padding(kernel_size: int) -> int:
        return 0  # below k // 2 the side branches read a cropped input

    def _build_branches(self) -> None:
        k, padding, extra = self.kernel_size, self.padding, self.padding - self.kernel_size // 2
        self.crop = max(0, -extra)
        extra = max(0, extra)
        common = dict(stride=self.stride, groups=self.groups, bias=False)
        channels = (self.in_channels, self.out_channels)
        self.square_conv = nn.Conv2d(*channels, (k, k), padding=(padding, padding), **common)
        self.square_bn = nn.BatchNorm2d(self.out_channels)
        self.ver_conv = nn.Conv2d(*channels, (k, 1), padding=(padding, extra), **common)
        self.ver_bn = nn.BatchNorm2d(self.out_channels)
        self.hor_conv = nn.Conv2d(*channels, (1, k), padding=(extra, padding), **common)
        self.hor_bn = nn.BatchNorm2d(self.out_channels)

    def linear_forward(self, x: Tensor) -> Tensor:
        square = self.square_bn(self.square_conv(x))
        c = self.crop
        ver_in = x[:, :, :, c:x.shape[3] - c] if c else x
        hor_in = x[:, :, c:x.shape[2] - c, :] if c else x
        return square + self.ver_bn(self.ver_conv(ver_in)) + self.hor_bn(self.hor_conv(hor_in))

    def equivalent_kernel_bias(self) -> KernelBias:
        """K = K_kxk + pad(K_kx1) + pad(K_1xk), each BN-folded (ACNet Sec. 3.3)."""
        k = self.kernel_size
        kv, bv = fold_conv_bn(self.ver_conv, self.ver_bn)
        kh, bh = fold_conv_bn(self.hor_conv, self.hor_bn)
        square = fold_conv_bn(self.square_conv, self.square_bn)
        return add_branches(square, (pad_kernel(kv, k), bv), (pad_kernel(kh, k), bh))
