"""Property: for any geometry, a block's deploy form equals its eval-mode training form.

Random channels, groups, stride, kernel 3/5, batch and spatial size; random weights and randomised BN
statistics. fp32 within 1e-5 relative to the output's largest magnitude; float64 within 1e-10.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.reparam import ACBlock, ConvBN, DiverseBranchBlock, QARepVGGBlock, RepVGGBlock, SEBlock, to_deploy
from tests.conftest import randomize_

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}


@st.composite
def geometries(draw, allow_depthwise: bool = False):
    groups = draw(st.sampled_from([1, 2, 4]))
    in_channels = groups * draw(st.integers(1, 4))
    same = draw(st.booleans())
    out_channels = in_channels if same else groups * draw(st.integers(1, 4))
    if allow_depthwise:
        # DBB defines groups == out_channels only as depthwise (in == out); see DiverseBranchBlock
        if draw(st.booleans()):
            groups = out_channels = in_channels
        elif out_channels == groups:
            out_channels = 2 * groups
    return dict(
        in_channels=in_channels, out_channels=out_channels, groups=groups,
        kernel_size=draw(st.sampled_from([3, 5])), stride=draw(st.sampled_from([1, 2])),
        batch=draw(st.integers(1, 3)), height=draw(st.integers(5, 12)), width=draw(st.integers(5, 12)),
        seed=draw(st.integers(0, 2**16)),
    )


def _build(kind: str, g: dict) -> torch.nn.Module:
    k = g["kernel_size"]
    args = (g["in_channels"], g["out_channels"], k, g["stride"], k // 2)
    if kind == "convbn":
        return ConvBN(*args, groups=g["groups"])
    if kind == "repvgg":
        # "global": the official "width" pooling refuses most non-square maps (see SE_POOLING)
        return RepVGGBlock(*args, groups=g["groups"], use_se=g["out_channels"] >= 16, se_pooling="global")
    if kind == "acb":
        return ACBlock(*args, groups=g["groups"])
    return DiverseBranchBlock(*args, groups=g["groups"])


def _relative_error(kind: str, g: dict, dtype: torch.dtype) -> float:
    torch.manual_seed(g["seed"])
    block = randomize_(_build(kind, g), seed=g["seed"]).to(dtype).eval()
    x = torch.randn(g["batch"], g["in_channels"], g["height"], g["width"], dtype=dtype)
    deployed = to_deploy(block)
    with torch.no_grad():
        expected, actual = block(x), deployed(x)
    assert actual.shape == expected.shape
    return ((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-30)).item()


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["convbn", "repvgg", "acb"])
@SETTINGS
@given(g=geometries())
def test_deploy_equals_training_form(kind: str, dtype: torch.dtype, g: dict) -> None:
    assert _relative_error(kind, g, dtype) < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@SETTINGS
@given(g=geometries(allow_depthwise=True))
def test_dbb_deploy_equals_training_form(dtype: torch.dtype, g: dict) -> None:
    assert _relative_error("dbb", g, dtype) < TOLERANCE[dtype]


@pytest.mark.parametrize("internal", [None, 3, 12])
@pytest.mark.parametrize("single_init", [False, True])
def test_dbb_options(internal, single_init: bool) -> None:
    block = DiverseBranchBlock(6, 8, 3, 1, 1, internal_channels_1x1_3x3=internal, single_init=single_init)
    if not single_init:
        randomize_(block, seed=3)
    block = block.double().eval()
    x = torch.randn(2, 6, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(to_deploy(block)(x), block(x), rtol=1e-10, atol=1e-10)


def test_dbb_single_init_starts_as_the_kxk_branch() -> None:
    block = DiverseBranchBlock(4, 4, 3, single_init=True).double().eval()
    x = torch.randn(1, 4, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(block(x), block.dbb_origin(x))


def test_repvgg_se_block_is_kept_in_deploy_form() -> None:
    block = randomize_(RepVGGBlock(32, 32, use_se=True), seed=4).double().eval()
    deployed = to_deploy(block)
    assert hasattr(deployed, "se") and hasattr(deployed.se, "down")
    x = torch.randn(2, 32, 7, 7, dtype=torch.float64)
    torch.testing.assert_close(deployed(x), block(x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("pooling", ["width", "global"])
def test_se_on_a_non_square_map_pools_as_declared(pooling: str) -> None:
    """Official RepVGG SE: avg_pool2d with a width x width kernel, so on 8x6 it averages the top 6x6 rows."""
    se = randomize_(SEBlock(32, 2, pooling=pooling)).double().eval()
    x = torch.randn(2, 32, 8, 6, dtype=torch.float64)
    window = x[:, :, :6, :6] if pooling == "width" else x
    squeezed = window.mean(dim=(2, 3), keepdim=True)
    expected = x * se.up(torch.relu(se.down(squeezed))).sigmoid()
    torch.testing.assert_close(se(x), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("pooling", ["width", "global"])
def test_repvgg_se_block_deploys_exactly_on_non_square_input(pooling: str) -> None:
    block = randomize_(RepVGGBlock(32, 32, use_se=True, se_pooling=pooling), seed=5).double().eval()
    x = torch.randn(2, 32, 9, 7, dtype=torch.float64)
    torch.testing.assert_close(to_deploy(block)(x), block(x), rtol=1e-12, atol=1e-14)


def test_unknown_se_pooling_names_the_choices() -> None:
    with pytest.raises(ValueError, match="known: width, global"):
        SEBlock(16, 1, pooling="max")


PADDING_CASES = [
    (cls, k, p)
    for cls, lowest in ((ACBlock, lambda k: 0), (RepVGGBlock, lambda k: k // 2), (DiverseBranchBlock, lambda k: k // 2))
    for k in (3, 5)
    for p in range(lowest(k), k // 2 + 2)
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("cls,k,padding", PADDING_CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_every_supported_padding_folds_exactly(cls, k: int, padding: int, stride: int, dtype) -> None:
    """0 .. k//2+1 for ACB (side branches cropped below k//2), k//2 .. k//2+1 for RepVGG and DBB."""
    block = randomize_(cls(4, 8, k, stride, padding), seed=k + padding).to(dtype).eval()
    x = torch.randn(2, 4, 9, 7, dtype=dtype)
    deployed = to_deploy(block)
    with torch.no_grad():
        expected, actual = block(x), deployed(x)
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    assert actual.shape == expected.shape
    assert ((actual - expected).abs().max() / expected.abs().max()).item() <= tolerance


@pytest.mark.parametrize("deploy", [False, True])
@pytest.mark.parametrize("cls", [ACBlock, ConvBN, QARepVGGBlock])
def test_an_option_a_block_does_not_have_is_refused_in_both_forms(cls, deploy: bool) -> None:
    with pytest.raises(TypeError, match=f"{cls.__name__}: .*unexpected keyword argument 'use_se'"):
        cls(4, 8, 3, deploy=deploy, use_se=True)
