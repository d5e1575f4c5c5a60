"""RepVGG block (Ding et al., "RepVGG: Making VGG-style ConvNets Great Again", CVPR 2021, Sec. 3.3).

Training form: kxk conv+BN, 1x1 conv+BN and (when shapes allow) an identity BN, summed, then an optional
squeeze-and-excitation and ReLU. Deploy form: one kxk conv with bias, then the same SE and ReLU.
Submodule names follow the official implementation (`rbr_dense`, `rbr_1x1`, `rbr_identity`, `se`,
`rbr_reparam`) so that its train-form and deploy-form checkpoints load with strict=True.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch.nn.functional as F
from torch import Tensor, nn

from bench.reparam.algebra import KernelBias, add_branches, pad_kernel, require_padding_at_least
from bench.reparam.base import ReparamBlock
from bench.reparam.conv_bn import ConvBN
from bench.reparam.fold import fold_identity_bn


def _width_pool(x: Tensor) -> Tensor:
    return F.avg_pool2d(x, kernel_size=x.size(3))


SE_POOLING: dict[str, Callable[[Tensor], Tensor]] = {
    "width": _width_pool,
    "global": lambda x: F.adaptive_avg_pool2d(x, 1),
}
"""How the squeeze averages. "width" is the official RepVGG se_block.py: `avg_pool2d` with a square kernel
of the input's width, which on a non-square H x W map averages only the top W x W window (and fails
unless W <= H < 2W); equal to "global" on square maps. "global" averages the whole map."""


class SEBlock(nn.Module):
    """Squeeze-and-excitation as in RepVGG-D2se: average, 1x1 down, ReLU, 1x1 up, sigmoid, scale.

    `pooling` picks the average from `SE_POOLING`; the default "width" matches the official block on
    every input it accepts, so official checkpoints compute what they computed there.
    """

    def __init__(self, channels: int, internal_neurons: int, pooling: str = "width") -> None:
        super().__init__()
        if pooling not in SE_POOLING:
            raise ValueError(f"SE pooling '{pooling}' is unknown; known: {', '.join(SE_POOLING)}")
        self.pooling = pooling
        self.channels = channels
        self.down = nn.Conv2d(channels, internal_neurons, kernel_size=1, bias=True)
        self.up = nn.Conv2d(internal_neurons, channels, kernel_size=1, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        scale = SE_POOLING[self.pooling](x)
        scale = self.up(F.relu(self.down(scale))).sigmoid()
        return x * scale.view(-1, self.channels, 1, 1)


class RepVGGBlock(ReparamBlock):
    """kxk + 1x1 + identity branches; folds to one kxk conv for any padding >= kernel_size // 2."""

    deploy_attr = "rbr_reparam"
    branch_attrs = ("rbr_dense", "rbr_1x1", "rbr_identity")

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        groups: int = 1,
        padding_mode: str = "zeros",
        deploy: bool = False,
        use_se: bool = False,
        se_pooling: str = "width",
    ) -> None:
        super().__init__()
        if dilation != 1:
            raise ValueError(f"RepVGGBlock supports dilation=1 only; got dilation={dilation}")
        # below k // 2 the 1x1 branch could not match the kxk branch's output size (nor can the official)
        require_padding_at_least(type(self).__name__, kernel_size, padding, kernel_size // 2)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.groups, self.padding_mode = dilation, groups, padding_mode
        self.nonlinearity = nn.ReLU()
        self.se = SEBlock(out_channels, out_channels // 16, se_pooling) if use_se else nn.Identity()
        if deploy:
            self.rbr_reparam = self._make_deploy_conv()
            return
        has_identity = in_channels == out_channels and stride == 1 and padding == kernel_size // 2
        self.rbr_identity: Optional[nn.BatchNorm2d] = nn.BatchNorm2d(in_channels) if has_identity else None
        self.rbr_dense = ConvBN(in_channels, out_channels, kernel_size, stride, padding, groups)
        padding_1x1 = padding - kernel_size // 2
        self.rbr_1x1 = ConvBN(in_channels, out_channels, 1, stride, padding_1x1, groups)

    def forward(self, x: Tensor) -> Tensor:
        reparam = self._modules.get("rbr_reparam")
        if reparam is not None:
            return self.nonlinearity(self.se(reparam(x)))
        out = self.rbr_dense(x) + self.rbr_1x1(x)
        if self.rbr_identity is not None:
            out = out + self.rbr_identity(x)
        return self.nonlinearity(self.se(out))

    def equivalent_kernel_bias(self) -> KernelBias:
        """K = K_3x3 + pad(K_1x1) + K_id and b likewise, each branch BN-folded (RepVGG Eq. 3-4)."""
        k = self.kernel_size
        dense = self.rbr_dense.equivalent_kernel_bias()
        k1, b1 = self.rbr_1x1.equivalent_kernel_bias()
        branches = [dense, (pad_kernel(k1, k), b1)]
        if self.rbr_identity is not None:
            branches.append(fold_identity_bn(self.rbr_identity, self.groups, k))
        return add_branches(*branches)
