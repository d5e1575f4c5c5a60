"""The transforms of bench.reparam.algebra, each checked against the operation it replaces."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from bench.reparam import algebra
from bench.reparam.dbb_block import BNAndPad
from bench.reparam.fold import conv_kernel_bias, fold_bn, fold_conv_bn
from tests.conftest import randomize_

torch.manual_seed(0)


def _conv(kernel: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, groups: int = 1, padding=0, stride=1):
    return F.conv2d(x, kernel.to(x.dtype), bias.to(x.dtype), stride, padding, 1, groups)


@pytest.mark.parametrize("conv_bias", [False, True])
@pytest.mark.parametrize("groups", [1, 4])
def test_fuse_conv_bn_agrees_with_torch(conv_bias: bool, groups: int) -> None:
    conv = nn.Conv2d(8, 16, 3, padding=1, groups=groups, bias=conv_bias)
    bn = randomize_(nn.Sequential(nn.BatchNorm2d(16)), seed=1)[0].eval()
    reference = fuse_conv_bn_eval(conv.eval(), bn)
    kernel, bias = fold_conv_bn(conv, bn)
    torch.testing.assert_close(kernel.float(), reference.weight.detach(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(bias.float(), reference.bias.detach(), rtol=1e-6, atol=1e-6)


def test_fuse_conv_bn_without_affine() -> None:
    conv = nn.Conv2d(4, 6, 3, padding=1, bias=False).double()
    bn = nn.BatchNorm2d(6, affine=False).double()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.eval()
    x = torch.randn(2, 4, 7, 7, dtype=torch.float64)
    kernel, bias = fold_conv_bn(conv, bn)
    torch.testing.assert_close(_conv(kernel, bias, x, padding=1), bn(conv(x)), rtol=1e-12, atol=1e-12)


def test_fuse_conv_bn_rejects_feature_mismatch() -> None:
    with pytest.raises(ValueError, match="BatchNorm has 5 features but the conv has 4 output channels"):
        fold_bn(torch.zeros(4, 2, 3, 3), None, nn.BatchNorm2d(5))


@pytest.mark.parametrize("groups", [1, 2, 8])
@pytest.mark.parametrize("size", [1, 3, 5])
def test_identity_kernel_is_identity(groups: int, size: int) -> None:
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    kernel = algebra.identity_kernel(8, groups, size, torch.float64)
    out = _conv(kernel, torch.zeros(8), x, groups=groups, padding=size // 2)
    torch.testing.assert_close(out, x, rtol=0, atol=0)


def test_identity_kernel_rejects_indivisible_groups() -> None:
    with pytest.raises(ValueError, match="not divisible by groups"):
        algebra.identity_kernel(6, 4, 3)


@pytest.mark.parametrize("groups", [1, 3])
@pytest.mark.parametrize("stride", [1, 2])
def test_avg_pool_kernel_matches_avg_pool(groups: int, stride: int) -> None:
    x = torch.randn(2, 6, 9, 9, dtype=torch.float64)
    kernel = algebra.avg_pool_kernel(6, groups, 3, torch.float64)
    out = _conv(kernel, torch.zeros(6), x, groups=groups, padding=1, stride=stride)
    torch.testing.assert_close(out, F.avg_pool2d(x, 3, stride, padding=1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(1, 1), (1, 3), (3, 1), (1, 5), (3, 3)])
def test_pad_kernel_places_small_kernels_at_the_centre(shape: tuple[int, int]) -> None:
    """A kh x kw conv with centred padding equals its kernel padded into 5x5 (multi-scale, ACNet)."""
    kh, kw = shape
    x = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    small = torch.randn(4, 3, kh, kw, dtype=torch.float64)
    expected = F.conv2d(x, small, padding=(kh // 2, kw // 2))
    padded = algebra.pad_kernel(small, 5)
    assert padded.shape[-2:] == (5, 5)
    torch.testing.assert_close(F.conv2d(x, padded, padding=2), expected, rtol=1e-12, atol=1e-12)


def test_pad_kernel_with_explicit_offset() -> None:
    """A 1x3 conv with padding (0, 0) on a 3x3 window reads the first row of that window: offset (0, 0)."""
    x = torch.randn(1, 2, 7, 7, dtype=torch.float64)
    small = torch.randn(2, 2, 1, 3, dtype=torch.float64)
    expected = F.conv2d(x, small)[:, :, :-2, :]
    padded = algebra.pad_kernel(small, 3, offset=(0, 0))
    torch.testing.assert_close(F.conv2d(x, padded), expected, rtol=1e-12, atol=1e-12)


def test_pad_kernel_rejects_kernels_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        algebra.pad_kernel(torch.zeros(1, 1, 5, 5), 3)


def test_add_branches_sums_and_checks_shapes() -> None:
    a = (torch.ones(2, 2, 3, 3), torch.ones(2))
    kernel, bias = algebra.add_branches(a, a)
    assert kernel.sum() == 2 * 36 and bias.sum() == 4
    with pytest.raises(ValueError, match="one kernel shape"):
        algebra.add_branches(a, (torch.ones(2, 2, 1, 1), torch.ones(2)))


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("stride", [1, 2])
def test_merge_1x1_kxk_with_bn_and_pad(groups: int, stride: int) -> None:
    """1x1 conv -> BN -> pad with BN's zero response -> 3x3 conv equals the merged 3x3 conv (DBB Transform III)."""
    conv1 = nn.Conv2d(4, 6, 1, groups=groups, bias=False).double()
    bn_pad = randomize_(BNAndPad(1, 6), seed=2).double().eval()
    conv2 = nn.Conv2d(6, 8, 3, stride, padding=0, groups=groups, bias=True).double()
    x = torch.randn(2, 4, 9, 9, dtype=torch.float64)
    expected = conv2(bn_pad(conv1(x)))
    first = fold_bn(conv1.weight, None, bn_pad.bn)
    kernel, bias = algebra.merge_1x1_kxk(first, conv_kernel_bias(conv2), groups)
    out = _conv(kernel, bias, x, groups=groups, padding=1, stride=stride)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)


def test_merge_1x1_kxk_needs_a_1x1_first() -> None:
    with pytest.raises(ValueError, match="first conv must be 1x1"):
        algebra.merge_1x1_kxk((torch.zeros(2, 2, 3, 3), torch.zeros(2)), (torch.zeros(2, 2, 3, 3), torch.zeros(2)))
