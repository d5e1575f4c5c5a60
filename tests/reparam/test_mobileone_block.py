"""MobileOne block: exact fold of k conv+BN branches, the 1x1 scale branch and the BN skip (depthwise too),
apple/ml-mobileone's key layout in both forms, and clear refusals."""

from __future__ import annotations

import pytest
import torch

from bench.reparam import MobileOneBlock, to_deploy
from bench.reparam.fold_report import count_batchnorms
from tests.conftest import randomize_

BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

GEOMETRIES = [
    # in, out, kernel, stride, groups, branches, SE
    (8, 8, 3, 1, 8, 4, False),  # depthwise with skip, S0's 4 branches
    (8, 8, 3, 2, 8, 1, False),  # depthwise, stride 2: no skip
    (8, 8, 1, 1, 1, 4, False),  # pointwise with skip: no scale branch
    (8, 16, 1, 1, 1, 2, False),  # pointwise widening: no skip
    (16, 16, 3, 1, 16, 1, True),  # depthwise with SE (S4)
    (16, 16, 1, 1, 1, 1, True),  # pointwise with SE
    (4, 8, 3, 2, 1, 1, False),  # stage0: dense 3x3, stride 2
    (8, 8, 5, 1, 2, 3, False),  # grouped 5x5 with skip
]


def _relative_error(block: MobileOneBlock, x: torch.Tensor) -> tuple[float, torch.nn.Module]:
    deployed = to_deploy(block)
    with torch.no_grad():
        expected, actual = block(x), deployed(x)
    assert actual.shape == expected.shape
    return ((actual - expected).abs().max() / expected.abs().max()).item(), deployed


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("cin,cout,k,stride,groups,branches,se", GEOMETRIES)
def test_deploy_equals_training_form(cin, cout, k, stride, groups, branches, se, dtype):
    """Random weights and random BN statistics; a non-square input (9x7) so no row/column mix-up hides."""
    torch.manual_seed(cin + cout + k + stride + branches)
    block = MobileOneBlock(cin, cout, k, stride, groups=groups, use_se=se, num_conv_branches=branches)
    block = randomize_(block, seed=cin + k + branches).to(dtype).eval()
    error, deployed = _relative_error(block, torch.randn(2, cin, 9, 7, dtype=dtype))
    assert error <= (1e-12 if dtype == torch.float64 else 1e-5)
    assert count_batchnorms(deployed) == 0
    assert deployed.deployed and set(deployed.state_dict()) >= {"reparam_conv.weight", "reparam_conv.bias"}


@pytest.mark.parametrize("padding", [1, 2])
@pytest.mark.parametrize("stride", [1, 2])
def test_every_supported_padding_folds_exactly(padding, stride):
    block = randomize_(MobileOneBlock(4, 8, 3, stride, padding, num_conv_branches=2), seed=padding).double().eval()
    error, _ = _relative_error(block, torch.randn(2, 4, 9, 7, dtype=torch.float64))
    assert error <= 1e-12


def test_skip_needs_equal_channels_stride_1_and_centred_padding():
    assert MobileOneBlock(8, 8, 3).rbr_skip is not None
    assert MobileOneBlock(8, 8, 3, stride=2).rbr_skip is None
    assert MobileOneBlock(8, 16, 1).rbr_skip is None
    assert MobileOneBlock(8, 8, 3, padding=2).rbr_skip is None  # the output is larger than the input


def _official_block_keys(cin, cout, k, stride, branches, se, deploy):
    """apple/ml-mobileone MobileOneBlock: rbr_skip (BN) when in == out and stride 1, rbr_conv.{i} =
    Sequential(conv, bn), rbr_scale = Sequential(conv, bn) when k > 1, se.reduce/expand; deploy form
    reparam_conv (with bias) beside the same SE."""
    keys = {f"se.{conv}.{p}" for conv in ("reduce", "expand") for p in ("weight", "bias")} if se else set()
    if deploy:
        return keys | {"reparam_conv.weight", "reparam_conv.bias"}
    keys |= {f"rbr_conv.{i}.conv.weight" for i in range(branches)}
    keys |= {f"rbr_conv.{i}.bn.{n}" for i in range(branches) for n in BN_KEYS}
    if k > 1:
        keys |= {"rbr_scale.conv.weight"} | {f"rbr_scale.bn.{n}" for n in BN_KEYS}
    if cin == cout and stride == 1:
        keys |= {f"rbr_skip.{n}" for n in BN_KEYS}
    return keys


@pytest.mark.parametrize("cin,cout,k,stride,groups,branches,se", GEOMETRIES)
def test_official_key_layout_in_both_forms(cin, cout, k, stride, groups, branches, se):
    block = MobileOneBlock(cin, cout, k, stride, groups=groups, use_se=se, num_conv_branches=branches).eval()
    assert set(block.state_dict()) == _official_block_keys(cin, cout, k, stride, branches, se, deploy=False)
    built = MobileOneBlock(cin, cout, k, stride, groups=groups, use_se=se, num_conv_branches=branches, deploy=True)
    assert set(built.state_dict()) == _official_block_keys(cin, cout, k, stride, branches, se, deploy=True)
    converted = to_deploy(block)
    built.load_state_dict(converted.state_dict(), strict=True)
    if se:
        assert block.se.reduce.out_channels == int(cout * 0.0625)


def test_se_averages_the_whole_map_as_the_official_block():
    """Official MobileOne SE: avg_pool2d with kernel [H, W], i.e. the mean of the whole (non-square) map."""
    block = randomize_(MobileOneBlock(32, 32, 1, use_se=True), seed=2).double().eval()
    se = block.se
    x = torch.randn(2, 32, 8, 5, dtype=torch.float64)
    squeezed = x.mean(dim=(2, 3), keepdim=True)
    expected = x * torch.sigmoid(se.expand(torch.relu(se.reduce(squeezed))))
    torch.testing.assert_close(se(x), expected, rtol=1e-12, atol=0)


def test_refusals_name_the_problem():
    with pytest.raises(ValueError, match="num_conv_branches >= 1"):
        MobileOneBlock(8, 8, 3, num_conv_branches=0)
    with pytest.raises(ValueError, match="padding must be at least 1"):
        MobileOneBlock(8, 8, 3, padding=0)
    with pytest.raises(RuntimeError, match="training mode"):
        MobileOneBlock(8, 8, 3).switch_to_deploy()
