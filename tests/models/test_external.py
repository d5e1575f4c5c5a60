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
