"""Kernel/bias algebra of structural re-parameterization: pure functions on tensors.

Every training-form block in this package is folded with these few transforms and nothing else.
Notation: a convolution is a pair (K, b) with K of shape (C_out, C_in / groups, kh, kw) and b of shape
(C_out,); "kxk" means the deploy kernel's size. References: RepVGG (Ding et al., CVPR 2021, Sec. 3.3),
ACNet (Ding et al., ICCV 2019, Sec. 3.3), Diverse Branch Block (Ding et al., CVPR 2021, Sec. 3.2,
Transforms I-VI).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

KernelBias = tuple[Tensor, Tensor]


def fuse_conv_bn(
    kernel: Tensor,
    bias: Optional[Tensor],
    running_mean: Tensor,
    running_var: Tensor,
    eps: float,
    gamma: Optional[Tensor] = None,
    beta: Optional[Tensor] = None,
) -> KernelBias:
    """Fold an eval-mode BatchNorm into the convolution before it (DBB Transform I).

    BN(conv(x)) = gamma * (K*x + b - mu) / sqrt(var + eps) + beta, so with t = gamma / sqrt(var + eps):
    K' = K * t (per output channel) and b' = beta + (b - mu) * t. A BN without affine parameters has
    gamma = 1, beta = 0. Uses the running statistics: only valid in eval mode.
    """
    out_channels = kernel.shape[0]
    if running_mean.shape[0] != out_channels:
        raise ValueError(
            f"BatchNorm has {running_mean.shape[0]} features but the conv has {out_channels} output channels"
        )
    std = (running_var + eps).sqrt()
    gamma = torch.ones_like(std) if gamma is None else gamma
    beta = torch.zeros_like(std) if beta is None else beta
    bias = torch.zeros_like(std) if bias is None else bias
    t = gamma / std
    return kernel * t.reshape(-1, 1, 1, 1), beta + (bias - running_mean) * t


def pad_kernel(kernel: Tensor, size: int, offset: Optional[tuple[int, int]] = None) -> Tensor:
    """Zero-pad a (kh, kw) kernel into size x size (RepVGG 1x1 -> 3x3; ACNet/multi-scale 1xk, kx1).

    A kh x kw conv with padding (ph, pw) sees the same window as a size x size conv with padding
    size // 2 when its taps sit at rows size//2 - ph .. and columns size//2 - pw ..; the default offset
    assumes the small conv is centred (ph = kh // 2, pw = kw // 2).
    """
    kh, kw = kernel.shape[-2:]
    if offset is None:
        offset = (size // 2 - kh // 2, size // 2 - kw // 2)
    top, left = offset
    bottom, right = size - kh - top, size - kw - left
    if min(top, left, bottom, right) < 0:
        raise ValueError(f"a {kh}x{kw} kernel at offset {offset} does not fit in {size}x{size}")
    return F.pad(kernel, [left, right, top, bottom])


def identity_kernel(
    channels: int, groups: int, size: int, dtype: torch.dtype = torch.float32, device=None
) -> Tensor:
    """The size x size kernel of the identity map, for grouped convs too (RepVGG Sec. 3.3).

    With C / groups input channels per group, output channel i reads input channel i, which is
    position i mod (C / groups) inside its group; one 1 at the centre tap, zeros elsewhere.
    """
    if channels % groups:
        raise ValueError(f"channels={channels} is not divisible by groups={groups}")
    per_group = channels // groups
    kernel = torch.zeros(channels, per_group, size, size, dtype=dtype, device=device)
    index = torch.arange(channels, device=device)
    kernel[index, index % per_group, size // 2, size // 2] = 1.0
    return kernel


def avg_pool_kernel(
    channels: int, groups: int, size: int, dtype: torch.dtype = torch.float32, device=None
) -> Tensor:
    """A size x size average pooling as a conv kernel (DBB Transform V): 1/size^2 on the channel's own taps.

    Matches nn.AvgPool2d(size, padding=p) with count_include_pad=True (the default), whose zero padding
    is the conv's zero padding.
    """
    kernel = identity_kernel(channels, groups, 1, dtype, device)
    return kernel.expand(-1, -1, size, size) / float(size * size)


def add_branches(*branches: KernelBias) -> KernelBias:
    """Parallel branches with equal kernel size add (DBB Transform II): K = sum K_i, b = sum b_i."""
    if not branches:
        raise ValueError("add_branches needs at least one (kernel, bias) pair")
    shapes = {tuple(k.shape) for k, _ in branches}
    if len(shapes) != 1:
        raise ValueError(f"branches to add must have one kernel shape; got {sorted(shapes)}")
    return sum(k for k, _ in branches), sum(b for _, b in branches)


def merge_1x1_kxk(first: KernelBias, second: KernelBias, groups: int = 1) -> KernelBias:
    """A 1x1 conv followed by a kxk conv, merged into one kxk conv (DBB Transform III).

    With first = (K1, b1) of shape (D, C/g, 1, 1) and second = (K2, b2) of shape (E, D/g, k, k), per
    group: K[e, c] = sum_d K2[e, d] * K1[d, c] and b[e] = b2[e] + sum_{d,h,w} K2[e, d, h, w] * b1[d].
    The bias term is exact only if the padding between the two convs holds b1 rather than zeros, which
    is why DBB pads the intermediate map with the BN's bias (`BNAndPad`); see the DBB paper, Sec. 3.2.
    """
    k1, b1 = first
    k2, b2 = second
    if k1.shape[-2:] != (1, 1):
        raise ValueError(f"the first conv must be 1x1; got {tuple(k1.shape[-2:])}")
    k1_groups = k1.reshape(groups, k1.shape[0] // groups, k1.shape[1])
    k2_groups = k2.reshape(groups, k2.shape[0] // groups, *k2.shape[1:])
    merged = torch.einsum("gedhw,gdc->gechw", k2_groups, k1_groups)
    kernel = merged.reshape(k2.shape[0], k1.shape[1], *k2.shape[-2:])
    b1_groups = b1.reshape(groups, 1, -1, 1, 1)
    bias = (k2_groups * b1_groups).sum(dim=(2, 3, 4)).reshape(-1) + b2
    return kernel, bias


def require_padding_at_least(block: str, kernel_size: int, padding: int, lowest: int) -> None:
    """Refuse, at build, a padding the block's branches cannot share (each block says its lowest).

    Above kernel_size // 2 every branch is still centred on the kxk window and padded with what its
    BN gives a zero input, so the fold stays exact (checked for 0..k//2+1 in the tests).
    """
    if padding < lowest:
        raise ValueError(
            f"{block} with kernel_size={kernel_size} does not support padding={padding}; "
            f"padding must be at least {lowest}"
        )
