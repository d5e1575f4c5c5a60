"""QARepVGG block: exact fold (post-BN included), YOLOv6 key layout, networks."""

from __future__ import annotations

import pytest
import torch

from bench.models import create
from bench.reparam import QARepVGGBlock, to_deploy
from bench.reparam.fold_report import count_batchnorms
from tests.conftest import randomize_

BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _yolov6_train_keys() -> set[str]:
    """YOLOv6 QARepVGGBlock: rbr_dense = conv_bn (Sequential conv, bn), rbr_1x1 a plain conv, post `bn`;
    the identity is an nn.Identity (no keys)."""
    return (
        {"rbr_dense.conv.weight", "rbr_1x1.weight"}
        | {f"rbr_dense.bn.{k}" for k in BN_KEYS} | {f"bn.{k}" for k in BN_KEYS}
    )


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("cin,cout,stride,groups", [(8, 8, 1, 1), (8, 16, 2, 1), (8, 8, 1, 2), (8, 16, 1, 4)])
def test_deploy_equals_training_form(cin, cout, stride, groups, dtype):
    block = QARepVGGBlock(cin, cout, 3, stride, groups=groups)
    torch.nn.init.normal_(block.rbr_1x1.weight)
    block = randomize_(block, seed=cin + cout + stride + groups).to(dtype).eval()
    deployed = to_deploy(block)
    x = torch.randn(2, cin, 9, 7, dtype=dtype)
    with torch.no_grad():
        expected, actual = block(x), deployed(x)
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    assert ((actual - expected).abs().max() / expected.abs().max()).item() <= tolerance
    assert count_batchnorms(deployed) == 0 and set(deployed.state_dict()) == {"rbr_reparam.weight", "rbr_reparam.bias"}


@pytest.mark.parametrize("cin,cout,stride", [(8, 8, 1), (8, 16, 2)])
def test_yolov6_layout_loads_strictly(cin, cout, stride):
    source = randomize_(QARepVGGBlock(cin, cout, 3, stride)).eval()
    state = source.state_dict()
    assert set(state) == _yolov6_train_keys()
    target = QARepVGGBlock(cin, cout, 3, stride)
    target.load_state_dict(state, strict=True)
    deploy = QARepVGGBlock(cin, cout, 3, stride, deploy=True)
    deploy.load_state_dict(to_deploy(source).state_dict(), strict=True)


@pytest.mark.parametrize("name", ["qarepvgg_a0", "qarepvgg_b0"])
def test_networks_fold_to_no_batchnorm(name):
    train = randomize_(create(name, num_classes=10)).double().eval()
    deploy = to_deploy(train)
    x = torch.randn(1, 3, 40, 32, dtype=torch.float64)
    with torch.no_grad():
        a, b = train(x), deploy(x)
    assert ((a - b).abs().max() / a.abs().max()).item() <= 1e-12
    assert count_batchnorms(deploy) == 0
    direct = create(name, num_classes=10, deploy=True)
    direct.load_state_dict(deploy.state_dict(), strict=True)
