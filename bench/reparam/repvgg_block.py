"""RepVGG block (Ding et al., "RepVGG: Making VGG-style ConvNets Great Again", CVPR 2021, Sec. 3.3).

Training form: kxk conv+BN, 1x1 conv+BN and (when shapes allow) an identity BN, summed, then an optional
squeeze-and-excitation and ReLU. Deploy form: one kxk conv with bias, then the same SE and ReLU.
Submodule names follow the official implementation (`rbr_dense`, `rbr_1x1`, `rbr_identity`, `se`,
`rbr_reparam`) so that its train-form and deploy-form checkpoints load with strict=True.
"""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from bench.reparam.algebra import KernelBias, add_branches
from bench.reparam.base import ReparamBlock, sum_branches
from bench.reparam.conv_bn import branch_conv_bn, padded_kernel_bias
from bench.reparam.fold import fold_identity_bn
from bench.reparam.se import SE_POOLING, SEBlock

__all__ = ["RepVGGBlock", "SEBlock", "SE_POOLING"]


class RepVGGBlock(ReparamBlock):
    """kxk + 1x1 + identity branches; folds to one kxk conv for any padding >= kernel_size // 2."""

    deploy_attr = "rbr_reparam"
    branch_attrs = ("rbr_dense", "rbr_1x1", "rbr_identity")

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
        padding: Optional[int] = None, dilation: int = 1, groups: int = 1, padding_mode: str = "zeros",
        deploy: bool = False, use_se: bool = False, se_pooling: str = "width",
    ) -> None:
        """The official signature (dilation before groups); only dilation=1 is defined."""
        if dilation != 1:
            raise ValueError(f"RepVGGBlock supports dilation=1 only; got dilation={dilation}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups, deploy,
                         padding_mode=padding_mode)
        self.nonlinearity = nn.ReLU()
        self.se = SEBlock(out_channels, out_channels // 16, se_pooling) if use_se else nn.Identity()

    def _build_branches(self) -> None:
        self.rbr_identity: Optional[nn.BatchNorm2d] = nn.BatchNorm2d(self.in_channels) if self.has_identity else None
        self.rbr_dense = branch_conv_bn(self)
        self.rbr_1x1 = branch_conv_bn(self, 1)

    def linear_forward(self, x: Tensor) -> Tensor:
        return sum_branches(x, (self.rbr_dense, self.rbr_1x1, self.rbr_identity))

    def tail(self, x: Tensor) -> Tensor:
        return self.nonlinearity(self.se(x))

    def equivalent_kernel_bias(self) -> KernelBias:
        """K = K_3x3 + pad(K_1x1) + K_id and b likewise, each branch BN-folded (RepVGG Eq. 3-4)."""
        k = self.kernel_size
        branches = [self.rbr_dense.equivalent_kernel_bias(), padded_kernel_bias(self.rbr_1x1, k)]
        if self.rbr_identity is not None:
            branches.append(fold_identity_bn(self.rbr_identity, self.groups, k))
        return add_branches(*branches)
