"""The registry: names, info, errors for unknown names, external prefixes."""

from __future__ import annotations

import importlib.util

import pytest
from torch import nn

from bench.models import ModelInfo, create, info, names, register
from bench.models.paper import PAPER
from bench.usage import UsageError

EXPECTED = {
    "repvgg_a0", "repvgg_a1", "repvgg_a2", "repvgg_b0", "repvgg_b1", "repvgg_b1g2", "repvgg_b1g4",
    "repvgg_b2", "repvgg_b2g2", "repvgg_b2g4", "repvgg_b3", "repvgg_b3g2", "repvgg_b3g4", "repvgg_d2se",
    "qarepvgg_a0", "qarepvgg_b0",
    "mobileone_s0", "mobileone_s1", "mobileone_s2", "mobileone_s3", "mobileone_s4",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "acnet_resnet18", "acnet_resnet50", "dbb_resnet18", "dbb_resnet50", "blog_repvgg", "blog_repvgg_code",
}


def test_names_lists_every_network_of_the_issue():
    assert set(names()) == EXPECTED
    assert names() == sorted(names())


def test_info_carries_family_resolution_and_paper_figures():
    a0 = info("repvgg_a0")
    assert isinstance(a0, ModelInfo)
    assert (a0.name, a0.family, a0.default_resolution) == ("repvgg_a0", "repvgg", 224)
    paper = a0.paper
    assert (paper.top1, paper.speed_1080ti_b128, paper.params_m, paper.gflops) == (72.41, 3256, 8.30, 1.4)
    assert info("dbb_resnet50").paper is None
    assert info("dbb_resnet50").family == "dbb"


def test_every_paper_row_belongs_to_a_registered_model():
    assert set(PAPER) <= set(names())


def test_unknown_name_lists_known_models_and_suggests_close_ones():
    with pytest.raises(UsageError) as excinfo:
        create("repvgg_a9")
    message = str(excinfo.value)
    assert "model 'repvgg_a9' is unknown" in message
    assert "did you mean 'repvgg_a" in message
    assert "known: acnet_resnet18, " in message and "resnet50" in message
    assert "'timm:<name>'" in message


def test_unknown_name_without_close_match_has_no_suggestion():
    with pytest.raises(ValueError, match="known:") as excinfo:
        info("zzzzzz")
    assert "did you mean" not in str(excinfo.value)


def test_prefix_without_a_name_is_an_error():
    with pytest.raises(ValueError, match="names no model after 'timm:'"):
        create("timm:")


def test_create_does_not_force_eval_mode():
    assert create("resnet18").training
    assert isinstance(create("repvgg_a0", deploy=True), nn.Module)


def test_registering_a_taken_name_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        register("resnet18", lambda deploy=False: nn.Identity(), family="x")


@pytest.mark.parametrize("package", ["timm", "torchvision"])
def test_external_info_needs_no_package(package):
    entry = info(f"{package}:resnet18")
    assert entry.external and entry.family == package and entry.paper is None


@pytest.mark.parametrize("package", ["timm", "torchvision"])
def test_missing_external_package_says_what_to_install(package):
    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed; the error path cannot occur")
    with pytest.raises(ImportError, match=f"install {package}"):
        create(f"{package}:resnet18")
