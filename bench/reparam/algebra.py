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


def bn_affine(
    running_mean: Tensor, running_var: Tensor, eps: float, gamma: Optional[Tensor] = None,
    beta: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor]:
    """An eval-mode BatchNorm as a per-channel affine map BN(x) = scale * x + shift.

    scale = gamma / sqrt(var + eps) and shift = beta - mu * scale; a BN without affine parameters has
    gamma = 1, beta = 0. Uses the running statistics: only valid in eval mode.
    """
    scale = (running_var + eps).rsqrt()
    if gamma is not None:
        scale = scale * gamma
    shift = -running_mean * scale
    return scale, shift if beta is None else shift + beta


def _require_rank(weight: Tensor, rank: int, what: str) -> None:
    if weight.dim() != rank:
        raise ValueError(f"{what} needs a {rank}-d weight; got shape {tuple(weight.shape)} "
                         f"({'a Linear weight is 2-d, a Conv2d kernel 4-d'})")


def _per_channel(vector: Tensor, count: int, role: str, what: str) -> None:
    if vector.dim() != 1 or vector.shape[0] != count:
        raise ValueError(f"BatchNorm has {vector.shape[0] if vector.dim() == 1 else tuple(vector.shape)} features "
                         f"but the {what} has {count} {role}")


def affine_after(weight: Tensor, bias: Optional[Tensor], scale: Tensor, shift: Tensor, what: str) -> KernelBias:
    """A per-output-channel affine map after a conv or Linear: scale * (W x + b) + shift.

    W' = W * scale (row o scaled by scale[o], any rank), b' = scale * b + shift.
    """
    out = weight.shape[0]
    _per_channel(scale, out, "output channels" if weight.dim() == 4 else "output features", what)
    bias = torch.zeros_like(scale) if bias is None else bias
    return weight * scale.reshape(-1, *([1] * (weight.dim() - 1))), scale * bias + shift


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
    gamma = 1, beta = 0. Uses the running statistics: only valid in eval mode. The kernel must be 4-d
    (a Linear weight goes to `fuse_linear_bn`: broadcasting it as a kernel would make a 4-d tensor).
    """
    _require_rank(kernel, 4, "fuse_conv_bn")
    scale, shift = bn_affine(running_mean, running_var, eps, gamma, beta)
    return affine_after(kernel, bias, scale, shift, "conv")


def fuse_linear_bn(weight: Tensor, bias: Optional[Tensor], scale: Tensor, shift: Tensor) -> KernelBias:
    """A Linear followed by a BatchNorm1d over its output features (LeViT's `LinearNorm`, EfficientViT-M).

    BN(W x + b) = scale * (W x + b) + shift, so W' = diag(scale) W and b' = scale * b + shift, with
    (scale, shift) = `bn_affine(...)`. Exact only where the BN normalises the Linear's output features,
    i.e. on (N, features) inputs; a BN1d on (N, C, L) normalises C, not the Linear's last dimension.
    """
    _require_rank(weight, 2, "fuse_linear_bn")
    return affine_after(weight, bias, scale, shift, "Linear")


def fuse_bn_linear(scale: Tensor, shift: Tensor, weight: Tensor, bias: Optional[Tensor]) -> KernelBias:
    """A BatchNorm1d followed by a Linear over the same features (RepViT's and LeViT's `NormLinear`).

    W (scale * x + shift) + b = (W diag(scale)) x + (W shift + b): W' = W * scale (column i scaled by
    scale[i]) and b' = b + W shift. Exact on (N, features) inputs, as `fuse_linear_bn`.
    """
    _require_rank(weight, 2, "fuse_bn_linear")
    _per_channel(scale, weight.shape[1], "input features", "Linear")
    bias = weight.new_zeros(weight.shape[0]) if bias is None else bias
    return weight * scale.reshape(1, -1), bias + weight @ shift


def fuse_bn_conv(
    scale: Tensor, shift: Tensor, kernel: Tensor, bias: Optional[Tensor], groups: int = 1,
    padding: tuple[int, int] = (0, 0),
) -> KernelBias:
    """A BatchNorm2d followed by a conv that does not pad (NextViT's pre-BN, a BN before a 1x1 conv).

    conv(scale * x + shift) = conv_{K'}(x) + b' with K'[o, i] = K[o, i] * scale[c] and
    b'[o] = b[o] + sum_{i,h,w} K[o, i, h, w] * shift[c], where c = g * (C / groups) + i is the input channel
    that tap i of output o reads (g = o's group). Exact only when the conv pads nothing: a padded tap
    reads 0, while the unfused conv reads BN's output there only inside the map (BN(0) = shift is never
    seen), so a padded conv is refused.
    """
    _require_rank(kernel, 4, "fuse_bn_conv")
    if tuple(padding) != (0, 0):
        raise ValueError(f"a BatchNorm folds into the conv after it only when that conv does not pad; "
                         f"padding={tuple(padding)} reads zeros where the unfused conv would read BN(0) = shift")
    out_channels, per_group = kernel.shape[:2]
    _per_channel(scale, per_group * groups, "input channels", "conv")
    channel = (torch.arange(out_channels, device=kernel.device) // (out_channels // groups)) * per_group
    index = channel[:, None] + torch.arange(per_group, device=kernel.device)[None, :]
    bias = kernel.new_zeros(out_channels) if bias is None else bias
    return (kernel * scale[index][:, :, None, None],
            bias + (kernel * shift[index][:, :, None, None]).sum(dim=(1, 2, 3)))


def scale_branch(branch: KernelBias, scale: Tensor | float) -> KernelBias:
    """A branch multiplied by a learned scalar or per-output-channel vector (PP-YOLOE's `alpha`, a layer scale).

    s * conv_{K,b}(x) = conv_{s K, s b}(x), with s broadcast over output channels: K' = K * s[o],
    b' = b * s[o]. A vector must have one entry per output channel (a (C,), (C, 1, 1) or (1, C, 1, 1) tensor).
    """
    kernel, bias = branch
    s = torch.as_tensor(scale, dtype=kernel.dtype, device=kernel.device)
    if s.numel() != 1:
        if s.numel() != kernel.shape[0] or sum(n != 1 for n in s.shape) > 1:
            raise ValueError(f"a branch scale must be a scalar or one value per output channel "
                             f"({kernel.shape[0]}); got shape {tuple(s.shape)}")
    s = s.reshape(-1)
    return kernel * s.reshape(-1, *([1] * (kernel.dim() - 1))), bias * s


def pad_kernel(kernel: Tensor, size: int, offset: Optional[tuple[int, int]] = None) -> Tensor:
    """Zero-pad a (kh, kw) kernel into size x size (RepVGG 1x1 -> 3x3; ACNet/multi-scale 1xk, kx1).

    A kh x kw conv with padding (ph, pw) sees the same window as a size x size conv with padding
    size // 2 when its taps sit at rows size//2 - ph .. and columns size//2 - pw ..; the default offset
    assumes the small conv is centred (ph = kh // 2, pw = kw // 2). A dilated kernel must be made dense
    first (`dilate_kernel`): padding its k x k taps as if adjacent computes another convolution.
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
    channels: int, groups: int, size: int, dtype: torch.dtype = torch.float32, device=None, *,
    padding: int = 0, count_include_pad: bool = True,
) -> Tensor:
    """A size x size average pooling as a conv kernel (DBB Transform V): 1/size^2 on the channel's own taps.

    Matches nn.AvgPool2d(size, padding=p) with count_include_pad=True (the default), whose zero padding
    is the conv's zero padding. With count_include_pad=False and padding > 0 a border window divides by
    the number of real pixels it covers, not size^2: no fixed kernel computes that, so it is refused.
    """
    if not count_include_pad and padding > 0:
        raise ValueError(
            f"average pooling with count_include_pad=False and padding={padding} is not a convolution: its "
            "border windows divide by the pixels they cover, not by kernel_size^2; use count_include_pad=True "
            "(nn.AvgPool2d's default) or padding=0"
        )
    kernel = identity_kernel(channels, groups, 1, dtype, device)
    return kernel.expand(-1, -1, size, size) / float(size * size)


def dilate_kernel(kernel: Tensor, dilation: int | tuple[int, int]) -> Tensor:
    """A dilated kxk kernel as the dense kernel of size d (k - 1) + 1 (UniRepLKNet's dilated branches).

    A conv with kernel K and dilation d reads x at offsets d * i: the dense kernel D has D[d i, d j] = K[i, j]
    and zeros between, so conv_{K, dilation d, padding p} = conv_{D, dilation 1, padding p}. Then
    `pad_kernel` can centre it in a larger kernel (which `pad_kernel` alone cannot: it knows no dilation).
    """
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    if dh < 1 or dw < 1:
        raise ValueError(f"dilation must be >= 1; got {(dh, dw)}")
    kh, kw = kernel.shape[-2:]
    dense = kernel.new_zeros(*kernel.shape[:-2], dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    dense[..., ::dh, ::dw] = kernel
    return dense


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


Pair = tuple[int, int]


def _trivial_on(axis: int, kernel: Tensor, stride: Pair, padding: Pair) -> bool:
    """Along `axis` (0: height, 1: width) the conv is the identity map: one tap, stride 1, no padding."""
    return kernel.shape[2 + axis] == 1 and stride[axis] == 1 and padding[axis] == 0


def merge_serial(
    first: KernelBias, second: KernelBias, groups: int = 1, *,
    first_stride: Pair = (1, 1), first_padding: Pair = (0, 0),
    second_stride: Pair = (1, 1), second_padding: Pair = (0, 0),
) -> tuple[KernelBias, Pair, Pair]:
    """A conv followed by a conv, as one conv where that is exact (RepNeXt's 1xk then kx1, DBB's 1x1 then kxk).

    Exact when, along each axis, one of the two convs is the identity (one tap, stride 1, no padding):
    then along that axis only the other conv acts, and zero padding on the input equals zero padding on
    the intermediate map (a 1-tap conv maps zeros to zeros). Per group, with first = (K1, b1), second =
    (K2, b2): K[e, c, y1 + y2, x1 + x2] = sum_d K2[e, d, y2, x2] K1[d, c, y1, x1] and
    b[e] = b2[e] + sum_{d,y,x} K2[e, d, y, x] b1[d]; stride and padding per axis are those of the conv that
    acts along it. If the second conv pads, b1 must be zero: its zero padding would hide b1 at the border
    (DBB pads with the bias instead, see `merge_1x1_kxk`). Returns ((K, b), stride, padding); dilated
    kernels go through `dilate_kernel` first. Refuses anything else.
    """
    (k1, b1), (k2, b2) = first, second
    for axis, name in ((0, "height"), (1, "width")):
        if not (_trivial_on(axis, k1, first_stride, first_padding)
                or _trivial_on(axis, k2, second_stride, second_padding)):
            raise ValueError(
                f"two convs in series fold into one only if along each axis one of them is a single tap "
                f"with stride 1 and no padding; along the {name} the first has {k1.shape[2 + axis]} taps, "
                f"stride {first_stride[axis]}, padding {first_padding[axis]} and the second "
                f"{k2.shape[2 + axis]} taps, stride {second_stride[axis]}, padding {second_padding[axis]}"
            )
    if any(second_padding) and bool(b1.any()):
        raise ValueError("the first conv has a bias and the second pads: at the border the second reads zeros "
                         "where the merged conv would see the first conv's bias; not exact")
    if k1.shape[0] != k2.shape[1] * groups:
        raise ValueError(f"the first conv has {k1.shape[0]} output channels but the second reads "
                         f"{k2.shape[1] * groups} (groups={groups})")
    d, e = k1.shape[0] // groups, k2.shape[0] // groups
    g1 = k1.reshape(groups, d, *k1.shape[1:])
    g2 = k2.reshape(groups, e, d, *k2.shape[2:])
    h1, w1 = k1.shape[-2:]
    h2, w2 = k2.shape[-2:]
    merged = k1.new_zeros(groups, e, k1.shape[1], h1 + h2 - 1, w1 + w2 - 1)
    for y in range(h2):
        for x in range(w2):
            merged[..., y:y + h1, x:x + w1] += torch.einsum("ged,gdchw->gechw", g2[..., y, x], g1)
    bias = b2 + (g2.sum(dim=(3, 4)) * b1.reshape(groups, 1, d)).sum(dim=2).reshape(-1)
    stride = (first_stride[0] * second_stride[0], first_stride[1] * second_stride[1])
    padding = (first_padding[0] + second_padding[0], first_padding[1] + second_padding[1])
    return (merged.reshape(k2.shape[0], k1.shape[1], *merged.shape[-2:]), bias), stride, padding
