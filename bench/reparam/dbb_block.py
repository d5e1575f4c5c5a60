"""Diverse Branch Block (Ding et al., "Diverse Branch Block", CVPR 2021, Sec. 3).

Four branches summed, each folded with the DBB paper's transforms: kxk conv+BN (Transform I);
1x1 conv+BN (I, then zero-pad, VI); 1x1 conv -> BN -> kxk conv -> BN (I, then III); 1x1 conv -> BN ->
kxk average pooling -> BN (I, V, III). Where a 1x1 conv feeds a kxk conv, the map in between is padded
with the BN's output for a zero input (`BNAndPad`), not with zeros, so the merged bias is exact.
A drop-in for conv+BN: no activation. Deploy form: `dbb_reparam`.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.reparam.algebra import KernelBias, add_branches, identity_kernel, merge_1x1_kxk
from bench.reparam.base import ReparamBlock, sum_branches
from bench.reparam.conv_bn import branch_conv_bn, padded_kernel_bias
from bench.reparam.fold import avg_pool_kernel_of, fold_bn, fold_conv_bn


class BNAndPad(nn.Module):
    """BN, then pad by `pad` with the value BN gives a zero input: beta - mu * gamma / sqrt(var + eps).

    With that border, a following kxk conv (padding 0) sees exactly what it would see if the padding
    had been applied to the BN's input, which is what makes Transform III exact at the borders.
    """

    def __init__(self, pad: int, num_features: int) -> None:
        super().__init__()
        self.pad = pad
        self.bn = nn.BatchNorm2d(num_features)

    def border_value(self) -> Tensor:
        bn = self.bn
        scale = (bn.running_var + bn.eps).rsqrt()
        if bn.weight is not None:
            return bn.bias - bn.running_mean * bn.weight * scale
        return -bn.running_mean * scale

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn(x)
        if self.pad == 0:
            return out
        border = self.border_value().detach().reshape(1, -1, 1, 1)
        return F.pad(out - border, [self.pad] * 4) + border


class IdentityBasedConv1x1(nn.Conv2d):
    """A 1x1 conv whose kernel is identity + a learned residual, the residual initialised to zero."""

    def __init__(self, channels: int, groups: int = 1) -> None:
        super().__init__(channels, channels, kernel_size=1, groups=groups, bias=False)
        nn.init.zeros_(self.weight)
        self.register_buffer("id_tensor", identity_kernel(channels, groups, 1), persistent=False)

    def effective_kernel(self) -> Tensor:
        return self.weight + self.id_tensor.to(self.weight.dtype)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.effective_kernel(), None, 1, 0, 1, self.groups)


class DiverseBranchBlock(ReparamBlock):
    """kxk, 1x1, 1x1->kxk and 1x1->avg branches; folds to one kxk conv for any padding >= k // 2."""

    deploy_attr = "dbb_reparam"
    branch_attrs = ("dbb_origin", "dbb_avg", "dbb_1x1", "dbb_1x1_kxk")

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
        padding: Optional[int] = None, groups: int = 1, deploy: bool = False,
        internal_channels_1x1_3x3: Optional[int] = None, single_init: bool = False,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups, deploy,
                         internal_channels_1x1_3x3=internal_channels_1x1_3x3)
        if single_init and not deploy:
            self.single_init()

    @property
    def depthwise(self) -> bool:
        return self.groups >= self.out_channels

    def _check_geometry(self) -> None:
        k, padding = self.kernel_size, self.padding
        if self.depthwise and padding > k // 2:
            raise ValueError(
                f"a depthwise DiverseBranchBlock needs padding <= kernel_size // 2 ({k // 2}), got "
                f"{padding}: its average-pooling branch (nn.AvgPool2d) pads at most half its kernel"
            )
        if self.depthwise and self.in_channels != self.out_channels:
            raise ValueError("a depthwise DiverseBranchBlock (groups == out_channels) needs in == out channels")

    def _build_branches(self, internal_channels_1x1_3x3: Optional[int] = None) -> None:
        depthwise = self.depthwise
        self.dbb_origin = branch_conv_bn(self)
        self.dbb_avg = self._avg_branch(depthwise)
        if not depthwise:
            self.dbb_1x1 = branch_conv_bn(self, 1)
        if internal_channels_1x1_3x3 is None:
            internal_channels_1x1_3x3 = self.in_channels if not depthwise else 2 * self.in_channels
        self.dbb_1x1_kxk = self._1x1_kxk_branch(internal_channels_1x1_3x3)

    def _avg_branch(self, depthwise: bool) -> nn.Sequential:
        k, s, p = self.kernel_size, self.stride, self.padding
        branch = nn.Sequential()
        if depthwise:
            branch.add_module("avg", nn.AvgPool2d(k, s, padding=p))
        else:
            branch.add_module(
                "conv", nn.Conv2d(self.in_channels, self.out_channels, 1, groups=self.groups, bias=False)
            )
            branch.add_module("bn", BNAndPad(p, self.out_channels))
            branch.add_module("avg", nn.AvgPool2d(k, s, padding=0))
        branch.add_module("avgbn", nn.BatchNorm2d(self.out_channels))
        return branch

    def _1x1_kxk_branch(self, internal: int) -> nn.Sequential:
        branch = nn.Sequential()
        if internal == self.in_channels:
            branch.add_module("idconv1", IdentityBasedConv1x1(self.in_channels, self.groups))
        else:
            branch.add_module(
                "conv1", nn.Conv2d(self.in_channels, internal, 1, groups=self.groups, bias=False)
            )
        branch.add_module("bn1", BNAndPad(self.padding, internal))
        branch.add_module(
            "conv2",
            nn.Conv2d(internal, self.out_channels, self.kernel_size, self.stride, 0, groups=self.groups, bias=False),
        )
        branch.add_module("bn2", nn.BatchNorm2d(self.out_channels))
        return branch

    def single_init(self) -> None:
        """Start as the kxk branch alone: every other branch's last BN gamma = 0 (DBB's option)."""
        with torch.no_grad():
            for bn in (self.dbb_avg.avgbn, self.dbb_1x1_kxk.bn2):
                bn.weight.zero_()
            if hasattr(self, "dbb_1x1"):
                self.dbb_1x1.bn.weight.zero_()
            self.dbb_origin.bn.weight.fill_(1.0)

    def linear_forward(self, x: Tensor) -> Tensor:
        branches = (self.dbb_origin, self.dbb_avg, self.dbb_1x1_kxk, self._modules.get("dbb_1x1"))
        return sum_branches(x, branches)

    def _kernel_1x1_kxk(self) -> KernelBias:
        branch = self.dbb_1x1_kxk
        if "idconv1" in branch._modules:
            kernel_1x1 = branch.idconv1.effective_kernel()
        else:
            kernel_1x1 = branch.conv1.weight
        first = fold_bn(kernel_1x1, None, branch.bn1.bn)
        second = fold_conv_bn(branch.conv2, branch.bn2)
        return merge_1x1_kxk(first, second, self.groups)

    def _kernel_avg(self) -> KernelBias:
        branch = self.dbb_avg
        device = branch.avgbn.running_mean.device
        pooled = avg_pool_kernel_of(branch.avg, self.out_channels, self.groups, device)
        second = fold_bn(pooled, None, branch.avgbn)
        if "conv" not in branch._modules:
            return second
        first = fold_conv_bn(branch.conv, branch.bn.bn)
        return merge_1x1_kxk(first, second, self.groups)

    def equivalent_kernel_bias(self) -> KernelBias:
        branches = [self.dbb_origin.equivalent_kernel_bias(), self._kernel_1x1_kxk(), self._kernel_avg()]
        if "dbb_1x1" in self._modules:
            branches.append(padded_kernel_bias(self.dbb_1x1, self.kernel_size))
        return add_branches(*branches)
