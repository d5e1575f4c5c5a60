"""MobileOne block (Vasu et al., "MobileOne: An Improved One millisecond Mobile Backbone", CVPR 2023, Sec. 3).

Training form: `num_conv_branches` parallel kxk conv+BN branches (the over-parameterization), a 1x1
"scale" conv+BN branch (when k > 1) and a BN-only skip (when in == out and stride 1), summed, then an
optional squeeze-and-excitation and ReLU. MobileOne uses it twice per layer: depthwise kxk
(groups = channels), then pointwise 1x1 (which has no scale branch). Deploy form: one kxk conv with
bias, then the same SE and ReLU: K = sum_i fold(K_i) + pad(fold(K_1x1)) + fold(BN, K_id).
Names follow apple/ml-mobileone (`rbr_conv.{i}.conv/bn`, `rbr_scale.conv/bn`, `rbr_skip`,
`reparam_conv`, `se.reduce/expand`, `activation`), so its train-form and deploy-form checkpoints load
with strict=True.
"""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from bench.reparam.algebra import KernelBias, add_branches
from bench.reparam.base import ReparamBlock, sum_branches
from bench.reparam.conv_bn import branch_conv_bn, padded_kernel_bias
from bench.reparam.fold import fold_identity_bn
from bench.reparam.se import MobileOneSE


class MobileOneBlock(ReparamBlock):
    """k parallel kxk conv+BN + 1x1 conv+BN + BN skip; folds to one kxk conv for any padding >= k // 2."""

    deploy_attr = "reparam_conv"
    branch_attrs = ("rbr_conv", "rbr_scale", "rbr_skip")

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
        padding: Optional[int] = None, groups: int = 1, deploy: bool = False,
        use_se: bool = False, num_conv_branches: int = 1,
    ) -> None:
        if num_conv_branches < 1:
            raise ValueError(f"MobileOneBlock needs num_conv_branches >= 1; got {num_conv_branches}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups, deploy,
                         num_conv_branches=num_conv_branches)
        self.num_conv_branches = num_conv_branches
        self.se = MobileOneSE(out_channels) if use_se else nn.Identity()
        self.activation = nn.ReLU()

    def _build_branches(self, num_conv_branches: int = 1) -> None:
        self.rbr_skip: Optional[nn.BatchNorm2d] = nn.BatchNorm2d(self.in_channels) if self.has_identity else None
        self.rbr_conv = nn.ModuleList(branch_conv_bn(self) for _ in range(num_conv_branches))
        self.rbr_scale: Optional[nn.Module] = branch_conv_bn(self, 1) if self.kernel_size > 1 else None

    def linear_forward(self, x: Tensor) -> Tensor:
        return sum_branches(x, (*self.rbr_conv, self.rbr_scale, self.rbr_skip))

    def tail(self, x: Tensor) -> Tensor:
        return self.activation(self.se(x))

    def equivalent_kernel_bias(self) -> KernelBias:
        """Every branch BN-folded (DBB Transform I), the 1x1 zero-padded to kxk, the skip as an identity
        kernel (depthwise too), all added (Transform II)."""
        k = self.kernel_size
        branches = [branch.equivalent_kernel_bias() for branch in self.rbr_conv]
        if self.rbr_scale is not None:
            branches.append(padded_kernel_bias(self.rbr_scale, k))
        if self.rbr_skip is not None:
            branches.append(fold_identity_bn(self.rbr_skip, self.groups, k))
        return add_branches(*branches)
