"""timm / torchvision entries when the libraries are installed (random weights, never a download)."""

from __future__ import annotations

import pytest
import torch

from bench.models import create, randomize_bn_
from bench.models.equivalence import output_error


def test_timm_repvgg_builds_and_reparameterizes():
    pytest.importorskip("timm")
    model = randomize_bn_(create("timm:repvgg_a0", num_classes=10)).eval()
    deployed = create("timm:repvgg_a0", deploy=True, num_classes=10)
    assert not deployed.training
    x = torch.randn(1, 3, 64, 64)
    from timm.utils.model import reparameterize_model

    _, rel = output_error(model(x), reparameterize_model(model)(x))
    assert rel < 1e-4


@pytest.mark.parametrize("name", ["timm:repvit_m1", "timm:ghostnetv3_050"])
def test_timm_deploy_form_folds_at_least_what_timms_recipe_folds(name):
    """The form a `timm:` sweep times (`build_form`, i.e. to_deploy) left 2 and 257 BatchNorms here while
    timm's recipe leaves 0 and 54; now no BatchNorm and no unconverted block is left."""
    pytest.importorskip("timm")
    from bench.models.build import build_form
    from bench.reparam.fold_report import count_batchnorms, count_multibranch

    deploy = build_form(name, "deploy")
    assert count_batchnorms(deploy) == 0 and count_multibranch(deploy) == 0
    assert create(name, deploy=True).state_dict().keys() == deploy.state_dict().keys()


def test_torchvision_resnet_deploy_folds_every_bn():
    pytest.importorskip("torchvision")
    model = randomize_bn_(create("torchvision:resnet18")).eval()
    from bench.models.external import _torchvision_deploy
    import copy

    deployed = _torchvision_deploy(copy.deepcopy(model))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in deployed.modules())
    x = torch.randn(1, 3, 64, 64)
    _, rel = output_error(model(x), deployed(x))
    assert rel < 1e-4


def test_unknown_torchvision_model_is_named():
    pytest.importorskip("torchvision")
    with pytest.raises(ValueError, match="unknown to torchvision"):
        create("torchvision:resnet9000")


class _DataDependent(torch.nn.Module):
    """A branch on a tensor's value: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))

    def forward(self, x):
        y = self.body(x)
        return y if y.sum() > 0 else -y


def test_torchvision_deploy_says_why_fx_failed():
    """The fx fallback used to be silent: the reason fx gave up is now in the warning."""
    from bench.models.external import _torchvision_deploy

    model = randomize_bn_(_DataDependent()).eval()
    x = torch.randn(1, 3, 16, 16)
    with pytest.warns(RuntimeWarning, match=r"cannot trace _DataDependent \(TraceError: .*to_deploy"):
        deployed = _torchvision_deploy(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in deployed.modules())
    assert output_error(model(x), deployed(x))[1] < 1e-4
