"""RepVGG variants have exactly the official layout: widths, depths, grouped layers, SE, key names."""

from __future__ import annotations

import pytest
import torch

from bench.models import create
from bench.models.repvgg import REPVGG_VARIANTS
from bench.reparam import RepVGGBlock, to_deploy

from tests.models.official_layout import official_state_shapes

SPECS = {
    # name: (blocks per stage 1-4, a, b, groups, use_se), from the official create_RepVGG_* functions
    "repvgg_a0": ((2, 4, 14, 1), 0.75, 2.5, 1, False),
    "repvgg_a1": ((2, 4, 14, 1), 1, 2.5, 1, False),
    "repvgg_a2": ((2, 4, 14, 1), 1.5, 2.75, 1, False),
    "repvgg_b0": ((4, 6, 16, 1), 1, 2.5, 1, False),
    "repvgg_b1": ((4, 6, 16, 1), 2, 4, 1, False),
    "repvgg_b1g2": ((4, 6, 16, 1), 2, 4, 2, False),
    "repvgg_b1g4": ((4, 6, 16, 1), 2, 4, 4, False),
    "repvgg_b2": ((4, 6, 16, 1), 2.5, 5, 1, False),
    "repvgg_b2g2": ((4, 6, 16, 1), 2.5, 5, 2, False),
    "repvgg_b2g4": ((4, 6, 16, 1), 2.5, 5, 4, False),
    "repvgg_b3": ((4, 6, 16, 1), 3, 5, 1, False),
    "repvgg_b3g2": ((4, 6, 16, 1), 3, 5, 2, False),
    "repvgg_b3g4": ((4, 6, 16, 1), 3, 5, 4, False),
    "repvgg_d2se": ((8, 14, 24, 1), 2.5, 5, 1, True),
}


def test_table_covers_the_official_variants():
    assert set(SPECS) == {name for name, spec in REPVGG_VARIANTS.items() if spec.block == "repvgg"}


def _meta_state(name: str, deploy: bool):
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in create(name, deploy=deploy).state_dict().items()}


@pytest.mark.parametrize("deploy", [False, True], ids=["train", "deploy"])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_state_dict_keys_and_shapes_are_official(name, deploy):
    blocks, a, b, groups, use_se = SPECS[name]
    expected = official_state_shapes(blocks, a, b, groups, use_se, deploy)
    assert _meta_state(name, deploy) == expected


@pytest.mark.parametrize("name", sorted(SPECS))
def test_to_deploy_gives_the_keys_of_a_deploy_build(name):
    with torch.device("meta"):
        converted = to_deploy(create(name).eval())
    assert {k: tuple(v.shape) for k, v in converted.state_dict().items()} == _meta_state(name, True)


def test_issue_example_keys():
    train, deploy = _meta_state("repvgg_a0", False), _meta_state("repvgg_a0", True)
    assert {"stage0.rbr_dense.conv.weight", "stage1.1.rbr_identity.running_var", "linear.weight"} <= set(train)
    assert "stage0.rbr_reparam.bias" in deploy
    # the first block of each stage has stride 2, so the official code gives it no identity branch
    assert "stage1.0.rbr_identity.running_var" not in train


def test_grouped_layers_are_the_even_layers_2_to_26():
    model = create("repvgg_b1g4", deploy=True)
    blocks = [m for m in model.modules() if isinstance(m, RepVGGBlock)]
    groups = [b.rbr_reparam.groups for b in blocks]
    assert len(blocks) == 1 + 27
    assert groups[0] == 1  # stage0
    assert [i for i, g in enumerate(groups) if g == 4] == list(range(2, 27, 2))
    assert groups[27] == 1  # stage4.0 is layer 27


def test_a0_widths_and_stage0_width_cap():
    model = create("repvgg_a0", deploy=True)
    assert model.stage0.rbr_reparam.out_channels == 48
    assert [getattr(model, f"stage{i}")[0].rbr_reparam.out_channels for i in range(1, 5)] == [48, 96, 192, 1280]
    assert create("repvgg_b1", deploy=True).stage0.rbr_reparam.out_channels == 64  # min(64, 128)


def test_d2se_has_se_in_every_block():
    """Built on the meta device: 120M parameters need not be allocated to check the layout."""
    with torch.device("meta"):
        model = create("repvgg_d2se", deploy=True)
    blocks = [m for m in model.modules() if isinstance(m, RepVGGBlock)]
    assert len(blocks) == 1 + 8 + 14 + 24 + 1
    assert all(hasattr(b.se, "down") and b.se.down.out_channels == b.se.up.in_channels for b in blocks)


def test_num_classes_is_configurable():
    model = create("repvgg_a0", deploy=True, num_classes=10).eval()
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
