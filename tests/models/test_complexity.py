"""Parameters and MACs against the RepVGG paper (Table 4) and torchvision's documented ResNets.

Counted on the meta device: no memory, no arithmetic, so even RepVGG-B3 and D2se cost milliseconds.
"""

from __future__ import annotations

import math

import pytest

from bench.models import info, names
from bench.models.complexity import model_complexity
from bench.models.paper import REPVGG_SOURCES

WITH_PAPER_PARAMS = [
    n for n in names()
    if info(n).paper is not None and info(n).paper.params_m is not None and info(n).paper.source in REPVGG_SOURCES
]
"""RepVGG Table 4 truncates to two decimals; MobileOne's rounded sizes are checked in test_mobileone.py."""
WITH_PAPER_MACS = [n for n in names() if info(n).paper is not None and info(n).paper.gmacs is not None]
BOTTLENECK = {"resnet50", "resnet101", "resnet152"}

TORCHVISION_PARAMS = {
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808,
}
"""Exact parameter counts of torchvision's ResNets (training form: conv without bias + BN)."""

TORCHVISION_GMACS = {"resnet18": 1.81, "resnet34": 3.66, "resnet50": 4.09, "resnet101": 7.80, "resnet152": 11.51}
"""torchvision's documented "GFLOPS" (which are multiply-adds) at 224x224."""


def test_issue_examples_are_covered():
    assert {"repvgg_a0", "repvgg_a1", "repvgg_b0", "repvgg_a2", "repvgg_b1", "resnet18", "resnet50"} <= set(
        WITH_PAPER_PARAMS
    )
    assert {f"mobileone_s{i}" for i in range(5)} <= set(WITH_PAPER_MACS) - set(WITH_PAPER_PARAMS)


@pytest.mark.parametrize("name", WITH_PAPER_PARAMS)
def test_deploy_params_match_paper(name):
    """Within 0.01M, and exactly once truncated to two decimals, which is how the paper rounds."""
    params_m = model_complexity(name, deploy=True).params / 1e6
    paper = info(name).paper.params_m
    assert abs(params_m - paper) <= 0.01 + 1e-9
    assert math.floor(params_m * 100 + 1e-9) / 100 == pytest.approx(paper, abs=1e-9)


@pytest.mark.parametrize("name", WITH_PAPER_MACS)
def test_deploy_macs_within_3_percent_of_paper(name):
    """Bottleneck ResNets in the original layout (stride on the first 1x1), whose MACs the paper reports."""
    kwargs = {"stride_in_1x1": True} if name in BOTTLENECK else {}
    gmacs = model_complexity(name, deploy=True, **kwargs).macs / 1e9
    assert gmacs == pytest.approx(info(name).paper.gmacs, rel=0.03)


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_resnet_default_layout_matches_torchvision(name):
    complexity = model_complexity(name, deploy=False)
    assert complexity.params == TORCHVISION_PARAMS[name]
    assert complexity.macs / 1e9 == pytest.approx(TORCHVISION_GMACS[name], rel=0.005)


@pytest.mark.parametrize("name", sorted(BOTTLENECK))
def test_bottleneck_stride_position_changes_macs_not_params(name):
    v15 = model_complexity(name, deploy=True)
    v1 = model_complexity(name, deploy=True, stride_in_1x1=True)
    assert v1.params == v15.params
    assert v1.macs < v15.macs


def test_resnet_deploy_drops_one_parameter_per_bn_channel():
    """Folding replaces gamma and beta (2C) by a conv bias (C): ResNet-18 has 4800 BN channels."""
    assert model_complexity("resnet18", deploy=False).params - model_complexity("resnet18").params == 4800


@pytest.mark.parametrize("kind", ["acnet", "dbb"])
@pytest.mark.parametrize("depth", [18, 50])
def test_acnet_and_dbb_deploy_forms_are_the_plain_resnet(kind, depth):
    base = model_complexity(f"resnet{depth}")
    variant = model_complexity(f"{kind}_resnet{depth}")
    assert (variant.params, variant.macs) == (base.params, base.macs)
    assert model_complexity(f"{kind}_resnet{depth}", deploy=False).params > base.params


def test_d2se_is_deeper_b2_with_se():
    d2se = model_complexity("repvgg_d2se")
    b2 = model_complexity("repvgg_b2")
    assert d2se.params > b2.params and d2se.macs > b2.macs
