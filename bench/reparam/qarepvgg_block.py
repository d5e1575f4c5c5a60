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

from torch import Tensor, nn

from bench.reparam.algebra import KernelBias, add_branches, identity_kernel, pad_kernel, require_padding_at_least
from bench.reparam.base import ReparamBlock
from bench.reparam.conv_bn import ConvBN
from bench.reparam.fold import fold_bn


class QARepVGGBlock(ReparamBlock):
    """kxk conv+BN + 1x1 conv + identity, then post-BN and ReLU; folds to one kxk conv and ReLU."""

    deploy_attr = "rbr_reparam"
    branch_attrs = ("rbr_dense", "rbr_1x1", "rbr_identity", "bn")

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
        require_padding_at_least(type(self).__name__, kernel_size, padding, kernel_size // 2)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding, self.groups = kernel_size, stride, padding, groups
        self.nonlinearity = nn.ReLU()
        if deploy:
            self.rbr_reparam = self._make_deploy_conv()
            return
        has_identity = in_channels == out_channels and stride == 1 and padding == kernel_size // 2
        self.rbr_identity: Optional[nn.Identity] = nn.Identity() if has_identity else None
        self.rbr_dense = ConvBN(in_channels, out_channels, kernel_size, stride, padding, groups)
        self.rbr_1x1 = nn.Conv2d(
            in_channels, out_channels, 1, stride, padding - kernel_size // 2, groups=groups, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        reparam = self._modules.get("rbr_reparam")
        if reparam is not None:
            return self.nonlinearity(reparam(x))
        out = self.rbr_dense(x) + self.rbr_1x1(x)
        if self.rbr_identity is not None:
            out = out + self.rbr_identity(x)
        return self.nonlinearity(self.bn(out))

    def equivalent_kernel_bias(self) -> KernelBias:
        k = self.kernel_size
        dense = self.rbr_dense.equivalent_kernel_bias()
        branches = [dense, (pad_kernel(self.rbr_1x1.weight.detach().double(), k), dense[1].new_zeros(self.out_channels))]
        if self.rbr_identity is not None:
            kernel = identity_kernel(self.in_channels, self.groups, k, dense[0].dtype, dense[0].device)
            branches.append((kernel, dense[1].new_zeros(self.out_channels)))
        kernel, bias = add_branches(*branches)
        return fold_bn(kernel, bias, self.bn)
