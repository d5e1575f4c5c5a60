"""Shapes and structure of the ResNet, ACNet/DBB and blog networks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.models import create
from bench.reparam import ACBlock, ConvBN, DiverseBranchBlock, RepVGGBlock


def _count(model: nn.Module, cls: type) -> int:
    return sum(isinstance(m, cls) for m in model.modules())


@pytest.mark.parametrize("name,classes", [("resnet18", 1000), ("resnet50", 7)])
def test_resnet_output_shape(name, classes):
    model = create(name, deploy=True, num_classes=classes).eval()
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, classes)


@pytest.mark.parametrize("kind,cls", [("acnet", ACBlock), ("dbb", DiverseBranchBlock)])
def test_every_3x3_is_replaced_and_nothing_else(kind, cls):
    r18 = create(f"{kind}_resnet18")
    assert _count(r18, cls) == 16  # 8 basic blocks x 2 convs 3x3
    assert isinstance(r18.stage0.conv1, ConvBN)  # 7x7 stem: conv+BN, as in the official builders
    assert isinstance(r18.stage2[0].shortcut, ConvBN)  # 1x1 projection
    r50 = create(f"{kind}_resnet50")
    assert _count(r50, cls) == 16  # one 3x3 per bottleneck
    assert isinstance(r50.stage1[0].conv1, ConvBN) and isinstance(r50.stage1[0].conv3, ConvBN)


def test_stem_can_be_replaced_too():
    model = create("acnet_resnet18", replace_stem=True)
    assert isinstance(model.stage0.conv1, ACBlock) and model.stage0.conv1.kernel_size == 7


def test_bottleneck_stride_position():
    v15 = create("resnet50", deploy=True)
    v1 = create("resnet50", deploy=True, stride_in_1x1=True)
    assert v15.stage2[0].conv2.conv.stride == (2, 2) and v15.stage2[0].conv1.conv.stride == (1, 1)
    assert v1.stage2[0].conv1.conv.stride == (2, 2) and v1.stage2[0].conv2.conv.stride == (1, 1)


@pytest.mark.parametrize("name,blocks,shape", [
    ("blog_repvgg", 9, (1, 512, 7, 7)),  # stem + 4 x 2, output stride 32
    ("blog_repvgg_code", 7, (1, 512, 14, 14)),  # stem + 3 x 2, output stride 16
])
def test_blog_networks(name, blocks, shape):
    with torch.device("meta"):
        model = create(name, deploy=True).eval()
        out = model(torch.zeros(1, 3, 224, 224))
    assert _count(model, RepVGGBlock) == blocks
    assert tuple(out.shape) == shape
    widths = [b.out_channels for b in model.modules() if isinstance(b, RepVGGBlock)]
    assert widths[0] == 64 and widths[-1] == 512


def test_blog_first_block_of_each_stage_downsamples():
    model = create("blog_repvgg")
    firsts = [stage[0] for stage in model.stages]
    assert [b.stride for b in firsts] == [2, 2, 2, 2]
    assert all(stage[1].rbr_identity is not None for stage in model.stages)


def test_blog_head_is_optional():
    model = create("blog_repvgg", deploy=True, num_classes=10).eval()
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 10)
