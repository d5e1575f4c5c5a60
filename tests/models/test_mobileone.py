"""MobileOne S0-S4 have the official layout (apple/ml-mobileone, mobileone.py), load its state dicts strictly
in both forms, fold exactly, and have the published deploy sizes."""

from __future__ import annotations

import pytest
import torch

from bench.models import create
from bench.models.complexity import model_complexity
from bench.models.equivalence import check_model
from bench.models.mobileone import MOBILEONE_VARIANTS
from bench.reparam import MobileOneBlock, to_deploy
from bench.reparam.fold_report import count_batchnorms
from tests.conftest import randomize_

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

OFFICIAL = {
    # name: (width multipliers of stages 1-4, num_conv_branches, use_se), from the official PARAMS table
    "mobileone_s0": ((0.75, 1.0, 1.0, 2.0), 4, False),
    "mobileone_s1": ((1.5, 1.5, 2.0, 2.5), 1, False),
    "mobileone_s2": ((1.5, 2.0, 2.5, 4.0), 1, False),
    "mobileone_s3": ((2.0, 2.5, 3.0, 4.0), 1, False),
    "mobileone_s4": ((3.0, 3.5, 3.5, 4.0), 1, True),
}

PUBLISHED_PARAMS_M = {
    "mobileone_s0": 2.08, "mobileone_s1": 4.8, "mobileone_s2": 7.8, "mobileone_s3": 10.1, "mobileone_s4": 14.8,
}
"""Deploy-form parameters (M), MobileOne paper (Vasu et al., CVPR 2023), Table 8 (S0 as 2.1, 2.08 in the
official README's model table); the paper rounds to one decimal."""

OFFICIAL_DEPLOY_PARAMS = {
    "mobileone_s0": 2_078_504, "mobileone_s1": 4_764_840, "mobileone_s2": 7_808_168,
    "mobileone_s3": 10_078_312, "mobileone_s4": 14_838_352,
}
"""Exact parameter counts of the official code's models after `reparameterize_model`."""


def _bn(prefix: str, channels: int) -> dict[str, tuple]:
    return {f"{prefix}.{n}": (() if n == "num_batches_tracked" else (channels,)) for n in BN}


def _official_block(prefix, cin, cout, k, stride, groups, branches, se, deploy) -> dict[str, tuple]:
    shapes: dict[str, tuple] = {}
    if se:
        internal = int(cout * 0.0625)
        shapes.update({f"{prefix}.se.reduce.weight": (internal, cout, 1, 1), f"{prefix}.se.reduce.bias": (internal,),
                       f"{prefix}.se.expand.weight": (cout, internal, 1, 1), f"{prefix}.se.expand.bias": (cout,)})
    if deploy:
        shapes[f"{prefix}.reparam_conv.weight"] = (cout, cin // groups, k, k)
        shapes[f"{prefix}.reparam_conv.bias"] = (cout,)
        return shapes
    for i in range(branches):
        shapes[f"{prefix}.rbr_conv.{i}.conv.weight"] = (cout, cin // groups, k, k)
        shapes.update(_bn(f"{prefix}.rbr_conv.{i}.bn", cout))
    if k > 1:
        shapes[f"{prefix}.rbr_scale.conv.weight"] = (cout, cin // groups, 1, 1)
        shapes.update(_bn(f"{prefix}.rbr_scale.bn", cout))
    if cin == cout and stride == 1:
        shapes.update(_bn(f"{prefix}.rbr_skip", cin))
    return shapes


def official_state_shapes(name: str, deploy: bool, num_classes: int = 1000) -> dict[str, tuple]:
    """{key: shape} of an official checkpoint, re-derived from MobileOne.__init__ and _make_stage."""
    widths, branches, use_se = OFFICIAL[name]
    in_planes = min(64, int(64 * widths[0]))
    shapes = _official_block("stage0", 3, in_planes, 3, 2, 1, 1, False, deploy)
    for stage, (base, depth, mult) in enumerate(zip((64, 128, 256, 512), (2, 8, 10, 1), widths), 1):
        planes = int(base * mult)
        num_se = (depth // 2 if stage == 3 else depth if stage == 4 else 0) if use_se else 0
        for layer in range(depth):
            se, stride = layer >= depth - num_se, 2 if layer == 0 else 1
            shapes.update(_official_block(f"stage{stage}.{2 * layer}", in_planes, in_planes, 3, stride, in_planes,
                                          branches, se, deploy))
            shapes.update(_official_block(f"stage{stage}.{2 * layer + 1}", in_planes, planes, 1, 1, 1,
                                          branches, se, deploy))
            in_planes = planes
    shapes["linear.weight"] = (num_classes, in_planes)
    shapes["linear.bias"] = (num_classes,)
    return shapes


def test_table_covers_the_registered_variants():
    assert set(OFFICIAL) == set(MOBILEONE_VARIANTS)


@pytest.mark.parametrize("deploy", [False, True], ids=["train", "deploy"])
@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_state_dict_has_the_official_layout(name, deploy):
    with torch.device("meta"):
        ours = {k: tuple(v.shape) for k, v in create(name, deploy=deploy).state_dict().items()}
    assert ours == official_state_shapes(name, deploy)


@pytest.mark.parametrize("name", ["mobileone_s0", "mobileone_s4"])
def test_official_layout_round_trips_strictly_in_both_forms(name):
    """A training checkpoint loads into a fresh training form; its conversion into a directly built deploy
    form; both strict, and the reloaded models compute what the originals compute."""
    torch.manual_seed(0)
    train = randomize_(create(name)).eval()
    reloaded = create(name).eval()
    reloaded.load_state_dict(train.state_dict(), strict=True)
    deployed = create(name, deploy=True).eval()
    deployed.load_state_dict(to_deploy(train).state_dict(), strict=True)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = train(x)
        torch.testing.assert_close(reloaded(x), expected, rtol=0, atol=0)
        assert ((deployed(x) - expected).abs().max() / expected.abs().max()).item() <= 1e-5


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_deploy_form_equals_training_form_in_float64(name):
    """Random weights and random BN statistics; 16x16 (float64 depthwise convs are slow on the CPU) still
    leaves every block a map of at least 1x1 to fold over, borders included."""
    result = check_model(name, torch.float64, resolution=16)
    assert result.max_rel <= 1e-12, result


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_deploy_params_as_published(name):
    with torch.device("meta"):
        model = create(name, deploy=True)
    assert count_batchnorms(model) == 0
    assert all(isinstance(m, MobileOneBlock) and m.deployed for m in model.modules() if isinstance(m, MobileOneBlock))
    params = model_complexity(name).params
    assert params == OFFICIAL_DEPLOY_PARAMS[name]
    assert abs(params / 1e6 - PUBLISHED_PARAMS_M[name]) <= 0.05


def test_s0_over_parameterizes_with_four_branches_but_not_the_stem():
    model = create("mobileone_s0")
    assert len(model.stage0.rbr_conv) == 1
    assert {len(m.rbr_conv) for n, m in model.named_modules() if isinstance(m, MobileOneBlock) and n != "stage0"} == {4}
    assert model_complexity("mobileone_s0", deploy=False).params > 2.5 * model_complexity("mobileone_s0").params
