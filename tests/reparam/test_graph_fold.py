"""Conv -> BN folding through the traced graph, and `fold_report`."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.models import create
from bench.reparam import fold_report, to_deploy
from bench.reparam.fold_report import count_batchnorms
from tests.conftest import randomize_


class AttributeConvBN(nn.Module):
    """Conv and BN as attributes used in forward (torchvision's style), plus a shared conv that must stay."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=2, bias=True)
        self.bn2 = nn.BatchNorm2d(8)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(x)) + 1.0


class BranchReadsConvOutput(nn.Module):
    """The conv's output is read twice, so folding the BN into it would change the other reader."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


class Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.seq = nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4))

    def forward(self, x):
        x = self.bn(self.conv(x))
        if x.sum() > 0:  # data-dependent: fx cannot trace it
            x = x * 2
        return self.seq(x)


def _equal_after_deploy(model: nn.Module, shape, dtype=torch.float64) -> nn.Module:
    model = randomize_(model).to(dtype).eval()
    deploy = to_deploy(model)
    x = torch.randn(*shape, dtype=dtype)
    with torch.no_grad():
        a, b = model(x), deploy(x)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert (a - b).abs().max() <= tol * a.abs().max()
    return deploy


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_attribute_conv_bn_folds_to_zero_batchnorms(dtype):
    deploy = _equal_after_deploy(AttributeConvBN(), (2, 3, 9, 7), dtype)
    assert count_batchnorms(deploy) == 0
    report = fold_report(AttributeConvBN(), deploy)
    assert (report.batchnorms_before, report.batchnorms_after) == (2, 0)
    assert report.problem() is None


def test_conv_output_read_elsewhere_is_not_folded():
    deploy = _equal_after_deploy(BranchReadsConvOutput(), (1, 3, 5, 6))
    assert count_batchnorms(deploy) == 1


def test_untraceable_model_warns_and_folds_sequentials_only():
    model = randomize_(Untraceable()).double().eval()
    with pytest.warns(UserWarning, match="cannot be traced by torch.fx"):
        deploy = to_deploy(model)
    assert count_batchnorms(deploy) == 1
    x = torch.randn(1, 3, 6, 5, dtype=torch.float64).abs()
    with torch.no_grad():
        assert torch.allclose(model(x), deploy(x), rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "acnet_resnet18", "dbb_resnet18"])
def test_project_resnets_fold_to_zero_batchnorms(name):
    train = create(name, num_classes=10).eval()
    deploy = to_deploy(train)
    report = fold_report(train, deploy)
    assert report.batchnorms_before > 0 and report.batchnorms_after == 0
    assert report.multibranch_after == 0 and report.problem() is None


def test_fold_report_fails_an_unconverted_deploy_form():
    model = AttributeConvBN().eval()
    report = fold_report(model, model)
    assert not report.changed
    assert "unchanged" in report.problem()
