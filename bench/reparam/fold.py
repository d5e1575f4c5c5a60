"""Adapters from nn modules to the (kernel, bias) pairs of `bench.reparam.algebra`.

Folding runs in float64 and the deploy conv casts back to the model's dtype once, so the fold adds no
error of its own beyond one rounding: an fp32 deploy conv is the nearest fp32 to the exact kernel.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import skip_init

from bench.reparam.algebra import KernelBias, avg_pool_kernel, bn_affine, fuse_conv_bn, identity_kernel


def _f64(tensor: Tensor | None) -> Tensor | None:
    return None if tensor is None else tensor.detach().to(torch.float64)


def _require_running_stats(bn: nn.Module) -> None:
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("BatchNorm without running statistics (track_running_stats=False) cannot be folded")


def bn_scale_shift(bn: nn.Module) -> tuple[Tensor, Tensor]:
    """An eval-mode BatchNorm (any dimension) as float64 (scale, shift): BN(x) = scale * x + shift."""
    _require_running_stats(bn)
    return bn_affine(_f64(bn.running_mean), _f64(bn.running_var), bn.eps, _f64(bn.weight), _f64(bn.bias))


def fold_bn(kernel: Tensor, bias: Tensor | None, bn: nn.BatchNorm2d) -> KernelBias:
    """(K, b) of `bn(conv_{K,b}(x))` for an eval-mode BN, affine or not."""
    _require_running_stats(bn)
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


def linear_weight_bias(linear: nn.Linear) -> KernelBias:
    """(W, b) of a Linear in float64, with a zero bias when it has none."""
    bias = linear.bias if linear.bias is not None else torch.zeros(linear.out_features, device=linear.weight.device)
    return _f64(linear.weight), _f64(bias)


def avg_pool_kernel_of(pool: nn.AvgPool2d, channels: int, groups: int, device=None) -> Tensor:
    """The float64 kernel of an nn.AvgPool2d (`algebra.avg_pool_kernel`), refusing what no kernel computes:
    count_include_pad=False with padding (border windows divide by fewer pixels), a divisor_override, a
    ceil_mode that adds partial windows, a non-square window."""
    size, padding = pool.kernel_size, pool.padding
    if not isinstance(size, int) or not isinstance(padding, int):
        raise ValueError(f"only a square AvgPool2d with one padding folds; got kernel_size={size}, padding={padding}")
    if pool.divisor_override is not None or pool.ceil_mode:
        raise ValueError("an AvgPool2d with divisor_override or ceil_mode=True is not a convolution; "
                         "use the defaults (divisor_override=None, ceil_mode=False)")
    return avg_pool_kernel(channels, groups, size, torch.float64, device, padding=padding,
                           count_include_pad=pool.count_include_pad)


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
