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

from bench.reparam.algebra import KernelBias, add_branches, pad_kernel, require_padding_at_least
from bench.reparam.base import ReparamBlock
from bench.reparam.fold import fold_conv_bn


class ACBlock(ReparamBlock):
    """kxk + kx1 + 1xk conv+BN branches; folds to one kxk conv for padding 0 .. any."""

    deploy_attr = "fused_conv"
    branch_attrs = ("square_conv", "square_bn", "ver_conv", "ver_bn", "hor_conv", "hor_bn")

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        groups: int = 1,
        deploy: bool = False,
    ) -> None:
        super().__init__()
        require_padding_at_least(type(self).__name__, kernel_size, padding, 0)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding, self.groups = kernel_size, stride, padding, groups
        if deploy:
            self.fused_conv = self._make_deploy_conv()
            return
        k, extra = kernel_size, padding - kernel_size // 2
        self.crop = max(0, -extra)
        extra = max(0, extra)
        common = dict(stride=stride, groups=groups, bias=False)
        self.square_conv = nn.Conv2d(in_channels, out_channels, (k, k), padding=(padding, padding), **common)
        self.square_bn = nn.BatchNorm2d(out_channels)
        self.ver_conv = nn.Conv2d(in_channels, out_channels, (k, 1), padding=(padding, extra), **common)
        self.ver_bn = nn.BatchNorm2d(out_channels)
        self.hor_conv = nn.Conv2d(in_channels, out_channels, (1, k), padding=(extra, padding), **common)
        self.hor_bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        fused = self._modules.get("fused_conv")
        if fused is not None:
            return fused(x)
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
