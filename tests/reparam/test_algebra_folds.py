"""The fold kinds third-party networks need (dilated, serial, scaled, BN before a conv or Linear, Linear and
BN1d), each checked in float64 against the unfused modules with random weights and BN statistics."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.reparam import algebra
from bench.reparam.fold import avg_pool_kernel_of, bn_scale_shift, conv_kernel_bias, linear_weight_bias

EXACT = {"rtol": 1e-12, "atol": 1e-12}


def _bn(cls, features: int, seed: int):
    bn = cls(features).double().eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        bn.running_mean.copy_(torch.rand(features, generator=g, dtype=torch.float64) - 0.5)
        bn.running_var.copy_(torch.rand(features, generator=g, dtype=torch.float64) * 1.5 + 0.5)
        bn.weight.copy_(torch.rand(features, generator=g, dtype=torch.float64) + 0.5)
        bn.bias.copy_(torch.rand(features, generator=g, dtype=torch.float64) - 0.5)
    return bn


@pytest.mark.parametrize("kernel_size,dilation", [(3, 2), (3, 3), (5, 2), (2, 2)])
def test_dilated_kernel_as_dense_kernel(kernel_size: int, dilation: int) -> None:
    x = torch.randn(2, 4, 15, 15, dtype=torch.float64)
    kernel = torch.randn(4, 1, kernel_size, kernel_size, dtype=torch.float64)
    padding = dilation * (kernel_size - 1) // 2
    expected = F.conv2d(x, kernel, padding=padding, dilation=dilation, groups=4)
    dense = algebra.dilate_kernel(kernel, dilation)
    assert dense.shape[-1] == dilation * (kernel_size - 1) + 1
    torch.testing.assert_close(F.conv2d(x, dense, padding=padding, groups=4), expected, **EXACT)


def test_unireplknet_dilated_branches_merge_into_one_13x13_kernel() -> None:
    """UniRepLKNet's k=13 block: a 13x13 depthwise conv plus 5,7,3,3,3 at dilations 1..5, each padded to keep
    the size, equal one 13x13 conv once each branch is made dense and centred (`pad_kernel` alone: 1.49)."""
    channels, x = 4, torch.randn(1, 4, 20, 20, dtype=torch.float64)
    large = torch.randn(channels, 1, 13, 13, dtype=torch.float64)
    expected = F.conv2d(x, large, padding=6, groups=channels)
    merged = large.clone()
    for k, d in zip((5, 7, 3, 3, 3), (1, 2, 3, 4, 5)):
        kernel = torch.randn(channels, 1, k, k, dtype=torch.float64)
        expected = expected + F.conv2d(x, kernel, padding=(d * (k - 1) + 1) // 2, dilation=d, groups=channels)
        merged = merged + algebra.pad_kernel(algebra.dilate_kernel(kernel, d), 13)
    torch.testing.assert_close(F.conv2d(x, merged, padding=6, groups=channels), expected, **EXACT)


def _conv(cin, cout, k, stride=1, padding=0, groups=1, bias=True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, padding, groups=groups, bias=bias).double().eval()


SERIAL_CASES = {
    "RepNeXt 1x3 s(1,2) then 3x1 s(2,1), depthwise": (
        lambda: _conv(6, 6, (1, 3), (1, 2), (0, 1), groups=6, bias=False),
        lambda: _conv(6, 6, (3, 1), (2, 1), (1, 0), groups=6)),
    "1xk then kx1 without a first bias, grouped": (
        lambda: _conv(6, 8, (1, 5), 1, (0, 2), groups=2, bias=False),
        lambda: _conv(8, 4, (5, 1), 1, (2, 0), groups=2)),
    "1x1 with bias then 3x3 that does not pad": (
        lambda: _conv(6, 8, 1), lambda: _conv(8, 4, 3, 2, 0)),
    "3x3 padded then 1x1, both with bias": (
        lambda: _conv(6, 8, 3, 2, 1), lambda: _conv(8, 4, 1)),
}


@pytest.mark.parametrize("case", SERIAL_CASES)
def test_serial_convs_merge_into_one(case: str) -> None:
    make_first, make_second = SERIAL_CASES[case]
    first, second = make_first(), make_second()
    x = torch.randn(2, 6, 13, 11, dtype=torch.float64)
    (kernel, bias), stride, padding = algebra.merge_serial(
        conv_kernel_bias(first), conv_kernel_bias(second), first.groups, first_stride=first.stride,
        first_padding=first.padding, second_stride=second.stride, second_padding=second.padding)
    out = F.conv2d(x, kernel, bias, stride, padding, groups=first.groups)
    torch.testing.assert_close(out, second(first(x)), **EXACT)


def test_serial_merge_refuses_what_is_not_exact() -> None:
    k3 = (torch.randn(4, 4, 3, 3, dtype=torch.float64), torch.zeros(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="along the height the first has 3 taps"):
        algebra.merge_serial(k3, k3, first_padding=(1, 1), second_padding=(1, 1))
    row = (torch.randn(4, 4, 1, 11, dtype=torch.float64), torch.ones(4, dtype=torch.float64))
    column = (torch.randn(4, 4, 11, 1, dtype=torch.float64), torch.zeros(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="first conv has a bias and the second pads"):  # RepNeXt keeps this pair
        algebra.merge_serial(row, column, first_padding=(0, 5), second_padding=(5, 0))


@pytest.mark.parametrize("shape", [(), (1,), (6,), (6, 1, 1), (1, 6, 1, 1)])
def test_scaled_branch(shape: tuple[int, ...]) -> None:
    """PP-YOLOE's `conv1(x) + alpha * conv2(x)` and a per-channel layer scale, folded into the branch."""
    conv = _conv(4, 6, 3, padding=1)
    alpha = torch.rand(shape, dtype=torch.float64) + 0.5
    x = torch.randn(2, 4, 7, 7, dtype=torch.float64)
    kernel, bias = algebra.scale_branch(conv_kernel_bias(conv), alpha)
    expected = alpha.reshape(-1, 1, 1) * conv(x) if alpha.dim() else alpha * conv(x)
    torch.testing.assert_close(F.conv2d(x, kernel, bias, padding=1), expected, **EXACT)


def test_scaled_branch_refuses_a_scale_per_input_channel() -> None:
    with pytest.raises(ValueError, match="one value per output channel \\(6\\); got shape \\(4,\\)"):
        algebra.scale_branch((torch.zeros(6, 4, 3, 3), torch.zeros(6)), torch.ones(4))


@pytest.mark.parametrize("kernel_size,groups,stride", [(1, 1, 1), (1, 2, 2), (3, 1, 1), (3, 4, 2)])
def test_bn_before_a_conv_that_does_not_pad(kernel_size: int, groups: int, stride: int) -> None:
    bn, conv = _bn(nn.BatchNorm2d, 8, seed=1), _conv(8, 12, kernel_size, stride, 0, groups=groups)
    x = torch.randn(2, 8, 9, 9, dtype=torch.float64)
    kernel, bias = algebra.fuse_bn_conv(*bn_scale_shift(bn), *conv_kernel_bias(conv), groups=groups,
                                        padding=conv.padding)
    torch.testing.assert_close(F.conv2d(x, kernel, bias, stride, groups=groups), conv(bn(x)), **EXACT)


def test_bn_before_a_padded_conv_is_refused() -> None:
    bn, conv = _bn(nn.BatchNorm2d, 4, seed=2), _conv(4, 4, 3, padding=1)
    with pytest.raises(ValueError, match="only when that conv does not pad; padding=\\(1, 1\\)"):
        algebra.fuse_bn_conv(*bn_scale_shift(bn), *conv_kernel_bias(conv), padding=conv.padding)


@pytest.mark.parametrize("bias", [True, False])
def test_bn1d_then_linear_and_linear_then_bn1d(bias: bool) -> None:
    x = torch.randn(5, 8, dtype=torch.float64)
    norm, linear = _bn(nn.BatchNorm1d, 8, seed=3), nn.Linear(8, 6, bias=bias).double()
    weight, b = algebra.fuse_bn_linear(*bn_scale_shift(norm), linear.weight.detach(),
                                       None if linear.bias is None else linear.bias.detach())
    torch.testing.assert_close(F.linear(x, weight, b), linear(norm(x)), **EXACT)
    post = _bn(nn.BatchNorm1d, 6, seed=4)
    weight, b = algebra.fuse_linear_bn(*linear_weight_bias(linear), *bn_scale_shift(post))
    torch.testing.assert_close(F.linear(x, weight, b), post(linear(x)), **EXACT)


def test_fuse_conv_bn_refuses_a_linear_weight() -> None:
    """It used to broadcast the (out, in) weight into a 4-d tensor and return it as if folded."""
    bn = _bn(nn.BatchNorm1d, 6, seed=5)
    with pytest.raises(ValueError, match="fuse_conv_bn needs a 4-d weight; got shape \\(6, 8\\)"):
        algebra.fuse_conv_bn(torch.zeros(6, 8, dtype=torch.float64), None, bn.running_mean, bn.running_var, bn.eps)
    with pytest.raises(ValueError, match="fuse_linear_bn needs a 2-d weight"):
        algebra.fuse_linear_bn(torch.zeros(6, 8, 1, 1), None, *bn_scale_shift(bn))


def test_avg_pool_without_padding_count_is_refused() -> None:
    """count_include_pad=False divides a border window by its real pixels, so no kernel computes it; refused
    with the reason, as is every pooling option no kernel computes."""
    with pytest.raises(ValueError, match="count_include_pad=False and padding=1 is not a convolution"):
        algebra.avg_pool_kernel(4, 4, 3, padding=1, count_include_pad=False)
    with pytest.raises(ValueError, match="count_include_pad=False and padding=1"):
        avg_pool_kernel_of(nn.AvgPool2d(3, 1, 1, count_include_pad=False), 4, 4)
    with pytest.raises(ValueError, match="ceil_mode"):
        avg_pool_kernel_of(nn.AvgPool2d(3, 2, 1, ceil_mode=True), 4, 4)
    x = torch.randn(1, 4, 8, 8, dtype=torch.float64)
    kernel = avg_pool_kernel_of(nn.AvgPool2d(3, 1, 0, count_include_pad=False), 4, 4)
    torch.testing.assert_close(F.conv2d(x, kernel, groups=4), F.avg_pool2d(x, 3, 1, 0, count_include_pad=False),
                               **EXACT)


def test_dbb_refuses_an_average_pooling_that_is_no_convolution() -> None:
    """Folded as if it counted the padding, this block's deploy form was off by 0.19 (relative)."""
    from bench.reparam import DiverseBranchBlock, to_deploy

    block = DiverseBranchBlock(4, 4, 3, groups=4).eval()
    block.dbb_avg.avg.count_include_pad = False
    with pytest.raises(ValueError, match="count_include_pad=False"):
        to_deploy(block)
