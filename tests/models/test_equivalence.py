"""Every registered network converts, and its deploy form computes what its training form computes.

Random weights and random BN statistics (`randomize_bn_`), eval mode, a 64x64 input. The five RepVGG
variants above 55M parameters are left to `python -m bench verify --models all` (minutes on 2 cores);
the paths they add (groups 4 on many layers, SE) are covered here by a small RepVGG built with them.
"""

from __future__ import annotations

import pytest
import torch

from bench.models import create, names, randomize_bn_
from bench.models.equivalence import Equivalence, check_model, check_module, compare_forms, output_error
from bench.models.repvgg import RepVGG
from bench.reparam import to_deploy

BIG = {"repvgg_b2", "repvgg_b2g2", "repvgg_b2g4", "repvgg_b3", "repvgg_b3g2", "repvgg_b3g4", "repvgg_d2se"}
CONVERTED_HERE = [n for n in names() if n not in BIG]


@pytest.mark.parametrize("name", CONVERTED_HERE)
def test_deploy_matches_training_form_fp32(name):
    result = check_model(name, torch.float32, resolution=64)
    assert result.passed, result
    assert result.max_rel < 1e-4


@pytest.mark.parametrize("name", ["resnet18", "repvgg_a0", "dbb_resnet18", "acnet_resnet18"])
def test_deploy_matches_training_form_fp64(name):
    assert check_model(name, torch.float64, resolution=32).max_rel < 1e-10


def test_small_grouped_se_repvgg_converts():
    def build():
        return RepVGG((2, 2, 3, 1), (0.5, 0.5, 0.5, 0.5), groups_map={2: 4, 4: 4, 6: 2}, use_se=True)

    assert check_module(build, (2, 3, 64, 64), "grouped SE RepVGG", torch.float32).max_rel < 1e-4
    assert check_module(build, (2, 3, 64, 64), "grouped SE RepVGG", torch.float64).max_rel < 1e-10


@pytest.mark.parametrize("name", names())
def test_deploy_build_has_the_structure_of_the_converted_model(name):
    """create(deploy=True) must be what to_deploy produces, so deploy checkpoints load into either."""
    with torch.device("meta"):
        built = create(name, deploy=True).state_dict()
        converted = to_deploy(create(name).eval()).state_dict()
    assert {k: tuple(v.shape) for k, v in built.items()} == {k: tuple(v.shape) for k, v in converted.items()}


@pytest.mark.parametrize("name", names())
def test_deploy_form_has_no_batchnorm_left(name):
    with torch.device("meta"):
        model = create(name, deploy=True)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def test_check_fails_when_the_deploy_form_is_wrong(monkeypatch):
    """The gate is not vacuous: a deploy form off by a small bias fails it."""
    import bench.models.equivalence as equivalence

    def off_by_a_bit(model):
        deployed = to_deploy(model)
        with torch.no_grad():
            deployed.linear.bias += 1e-2 * deployed.linear.bias.abs().max() + 1e-3
        return deployed

    monkeypatch.setattr(equivalence, "to_deploy", off_by_a_bit)
    assert not check_model("resnet18", torch.float32, resolution=32).passed


def test_fresh_bn_would_hide_a_wrong_fold():
    """Why the BN statistics are randomised: with fresh BN, dropping BN entirely changes almost nothing."""
    torch.manual_seed(0)
    fresh = create("resnet18").eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        reference = fresh(x)
        for module in fresh.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.eps = 0.0  # fresh BN with eps 0 is exactly the identity
        _, rel_fresh = output_error(reference, fresh(x))
        randomize_bn_(fresh, torch.Generator().manual_seed(0))
        randomized = fresh(x)
    assert rel_fresh < 1e-3
    assert output_error(reference, randomized)[1] > 0.1


def test_equivalence_nan_fails():
    assert not Equivalence("x", "float32", float("nan"), float("nan"), 1e-4).passed


def test_compare_forms_reports_dtype():
    model = randomize_bn_(create("resnet18")).eval()
    result = compare_forms(model, torch.randn(1, 3, 32, 32), "resnet18", 1e-4)
    assert result.dtype == "float32" and result.passed
