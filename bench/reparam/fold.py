"""Adapters from nn modules to the (kernel, bias) pairs of `bench.reparam.algebra`.

Folding runs in float64 and the deploy conv casts back to the model's dtype once, so the fold adds no
error of its own beyond one rounding: an fp32 deploy conv is the nearest fp32 to the exact kernel.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import skip_init

from bench.reparam.algebra import KernelBias, fuse_conv_bn, identity_kernel


def _f64(tensor: Tensor | None) -> Tensor | None:
    return None if tensor is None else tensor.detach().to(torch.float64)


def fold_bn(kernel: Tensor, bias: Tensor | None, bn: nn.BatchNorm2d) -> KernelBias:
    """(K, b) of `bn(conv_{K,b}(x))` for an eval-mode BN, affine or not."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("BatchNorm without running statistics (track_running_stats=False) cannot be folded")
    return fuse_conv_bn(
        _f64(kernel), _f64(bias), _f64(bn.running_mean), _f64(bn.running_var), bn.eps,
        gamma=_f64(bn.weight), beta=_f64(bn.bias),
    )


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> KernelBias:
    return fold_bn(conv.weight, conv.bias, bn)


def conv_kernel_bias(conv: nn.Conv2d) -> KernelBias:
    """(K, b) of a plain conv, with a zero bias when it has none."""
    bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels, device=conv.weight.device)
    return _f64(conv.weight), _f64(bias)


def fold_identity_bn(bn: nn.BatchNorm2d, groups: int, size: int) -> KernelBias:
    """(K, b) of `bn(x)` as a size x size conv: the identity kernel (RepVGG Sec. 3.3) folded with bn."""
    kernel = identity_kernel(bn.num_features, groups, size, torch.float64, bn.running_mean.device)
    return fold_bn(kernel, None, bn)


def conv_from_kernel_bias(
    kernel: Tensor, bias: Tensor, *, like: Tensor, stride=1, padding=0, dilation=1, groups: int = 1,
    padding_mode: str = "zeros",
) -> nn.Conv2d:
    """An eval-mode Conv2d with bias holding (K, b), cast to `like`'s dtype and device.

    Built with `torch.nn.utils.skip_init`: the default kaiming initialisation of a fresh conv would be
    overwritten at once, and for wide networks (RepVGG-B3) it was most of `to_deploy`'s time.
    """
    out_channels, in_per_group, kh, kw = kernel.shape
    conv = skip_init(
        nn.Conv2d, in_per_group * groups, out_channels, (kh, kw), stride=stride, padding=padding,
        dilation=dilation, groups=groups, bias=True, padding_mode=padding_mode,
        device=like.device, dtype=like.dtype,
    )
    with torch.no_grad():
        conv.weight.copy_(kernel)
        conv.bias.copy_(bias)
    return conv.eval()
