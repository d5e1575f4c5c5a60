"""QARepVGG block (Chu et al., "Make RepVGG Greater Again: A Quantization-aware Approach", 2022, Sec. 4).

Training form: a kxk conv+BN, a plain 1x1 conv (no BN) and the identity (no BN), summed, then a post-BN
and ReLU. Dropping the branch BNs and adding the post-BN keeps the folded kernel's range small, which is
what makes the deploy form quantize well. Deploy form: one kxk conv with bias, post-BN folded in too:
K = fold(post_bn, fold(bn, K_kxk) + pad(K_1x1) + K_id). Training-form keys follow YOLOv6's QARepVGGBlock
(`rbr_dense.conv`, `rbr_dense.bn`, `rbr_1x1`, `bn`), so its training checkpoints load with strict=True;
YOLOv6's deploy form keeps `bn` beside `rbr_reparam`, ours folds it (only `rbr_reparam` is left).
"""

from __future__ import annotations

from typing import Optional

import torch.nn.functional as F
from torch import Tensor, nn

from bench.reparam.algebra import KernelBias, add_branches, identity_kernel, pad_kernel
from bench.reparam.base import ReparamBlock, sum_branches
from bench.reparam.conv_bn import branch_conv_bn
from bench.reparam.fold import fold_bn


class QARepVGGBlock(ReparamBlock):
    """kxk conv+BN + 1x1 conv + identity, then post-BN and ReLU; folds to one kxk conv and ReLU."""

    deploy_attr = "rbr_reparam"
    branch_attrs = ("rbr_dense", "rbr_1x1", "rbr_identity", "bn")

    def _build_branches(self) -> None:
        self.rbr_identity: Optional[nn.Identity] = nn.Identity() if self.has_identity else None
        self.rbr_dense = branch_conv_bn(self)
        self.rbr_1x1 = branch_conv_bn(self, 1).conv  # a plain conv: QARepVGG drops this branch's BN
        self.bn = nn.BatchNorm2d(self.out_channels)

    def linear_forward(self, x: Tensor) -> Tensor:
        return self.bn(sum_branches(x, (self.rbr_dense, self.rbr_1x1, self.rbr_identity)))

    def tail(self, x: Tensor) -> Tensor:
        return F.relu(x)

    def equivalent_kernel_bias(self) -> KernelBias:
        k = self.kernel_size
        dense = self.rbr_dense.equivalent_kernel_bias()
        branches = [dense, (pad_kernel(self.rbr_1x1.weight.detach().double(), k), dense[1].new_zeros(self.out_channels))]
        if self.rbr_identity is not None:
            kernel = identity_kernel(self.in_channels, self.groups, k, dense[0].dtype, dense[0].device)
            branches.append((kernel, dense[1].new_zeros(self.out_channels)))
        kernel, bias = add_branches(*branches)
        return fold_bn(kernel, bias, self.bn)
