"""to_deploy on whole models, official names, and the errors bad input must get."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.reparam import ACBlock, ConvBN, DiverseBranchBlock, RepVGGBlock, to_deploy
from tests.conftest import randomize_


def test_to_deploy_returns_a_copy_and_leaves_the_input_usable() -> None:
    model = randomize_(nn.Sequential(RepVGGBlock(4, 4), RepVGGBlock(4, 8, stride=2)), seed=5).eval()
    x = torch.randn(1, 4, 8, 8)
    before = model(x)
    deployed = to_deploy(model)
    assert deployed is not model
    assert hasattr(model[0], "rbr_dense") and not hasattr(model[0], "rbr_reparam")
    assert hasattr(deployed[0], "rbr_reparam") and not hasattr(deployed[0], "rbr_dense")
    torch.testing.assert_close(model(x), before)
    torch.testing.assert_close(deployed(x), before, rtol=1e-5, atol=1e-5)


def test_to_deploy_refuses_a_model_in_training_mode() -> None:
    with pytest.raises(RuntimeError, match="training mode.*model.eval"):
        to_deploy(nn.Sequential(RepVGGBlock(4, 4)))


def test_to_deploy_refuses_a_submodule_left_in_training_mode() -> None:
    model = nn.Sequential(ConvBN(3, 4, 3), RepVGGBlock(4, 4)).eval()
    model[1].rbr_identity.train()
    with pytest.raises(RuntimeError, match="1.rbr_identity"):
        to_deploy(model)


def test_switch_to_deploy_refuses_training_mode() -> None:
    with pytest.raises(RuntimeError, match="RepVGGBlock is in training mode"):
        RepVGGBlock(4, 4).switch_to_deploy()


@pytest.mark.parametrize("block", [RepVGGBlock, DiverseBranchBlock])
def test_padding_below_half_kernel_is_refused_at_construction(block) -> None:
    """As in the official code: their 1x1 branches cannot match a kxk window padded less than k // 2."""
    with pytest.raises(ValueError, match="does not support padding=0; padding must be at least 1"):
        block(4, 8, 3, 1, 0)


def test_depthwise_dbb_refuses_padding_its_pooling_cannot_take() -> None:
    with pytest.raises(ValueError, match="depthwise DiverseBranchBlock needs padding <= kernel_size // 2"):
        DiverseBranchBlock(4, 4, 3, 1, 2, groups=4)


def test_sequential_conv_bn_pairs_are_fused() -> None:
    model = randomize_(
        nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1), nn.BatchNorm2d(4)),
        seed=6,
    ).eval()
    deployed = to_deploy(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in deployed.modules())
    assert isinstance(deployed[1], nn.Identity) and deployed[0].bias is not None
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(deployed(x), model(x), rtol=1e-5, atol=1e-5)


class _ThirdParty(nn.Module):
    """A block in the style of timm: converts itself with `reparameterize()`."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        if hasattr(self, "fused"):
            return self.fused(x)
        return self.a(x) + self.b(x)

    def reparameterize(self) -> None:
        self.fused = nn.Conv2d(2, 2, 3, padding=1)
        self.fused.weight.data = self.a.weight.data + self.b.weight.data
        self.fused.bias.data = self.a.bias.data + self.b.bias.data
        del self.a, self.b


def test_third_party_reparameterize_is_called() -> None:
    model = nn.Sequential(_ThirdParty()).eval()
    x = torch.randn(1, 2, 5, 5)
    deployed = to_deploy(model)
    assert hasattr(deployed[0], "fused")
    torch.testing.assert_close(deployed(x), model(x), rtol=1e-5, atol=1e-5)


def test_repvgg_block_uses_the_official_key_names() -> None:
    train_keys = set(RepVGGBlock(8, 8).state_dict())
    assert {"rbr_dense.conv.weight", "rbr_dense.bn.running_var", "rbr_1x1.conv.weight",
            "rbr_identity.running_mean", "rbr_identity.weight"} <= train_keys
    deployed = to_deploy(randomize_(RepVGGBlock(8, 8)).eval())
    assert set(deployed.state_dict()) == {"rbr_reparam.weight", "rbr_reparam.bias"}
    assert set(RepVGGBlock(8, 8, deploy=True).state_dict()) == {"rbr_reparam.weight", "rbr_reparam.bias"}


@pytest.mark.parametrize("block", [ConvBN, RepVGGBlock, ACBlock, DiverseBranchBlock])
def test_deploy_built_block_loads_a_converted_state_dict_strictly(block) -> None:
    trained = randomize_(block(4, 8, 3, 2, 1), seed=7).eval()
    converted = to_deploy(trained)
    fresh = block(4, 8, 3, 2, 1, deploy=True).eval()
    fresh.load_state_dict(converted.state_dict(), strict=True)
    x = torch.randn(1, 4, 9, 9)
    torch.testing.assert_close(fresh(x), trained(x), rtol=1e-5, atol=1e-5)


def test_dbb_refuses_grouped_geometry_it_cannot_define() -> None:
    with pytest.raises(ValueError, match="depthwise DiverseBranchBlock.*needs in == out"):
        DiverseBranchBlock(4, 2, 3, groups=2)


def test_conv_from_kernel_bias_holds_exactly_the_given_tensors():
    from bench.reparam.fold import conv_from_kernel_bias

    kernel = torch.randn(6, 2, 3, 3, dtype=torch.float64)
    bias = torch.randn(6, dtype=torch.float64)
    like = torch.empty(0, dtype=torch.float32)
    conv = conv_from_kernel_bias(kernel, bias, like=like, stride=2, padding=1, groups=2)
    reference = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2).eval()
    with torch.no_grad():
        reference.weight.copy_(kernel)
        reference.bias.copy_(bias)
    x = torch.randn(1, 4, 7, 5)
    assert not conv.training and conv.weight.dtype == torch.float32
    assert torch.equal(conv.weight, reference.weight) and torch.equal(conv.bias, reference.bias)
    assert torch.equal(conv(x), reference(x))
