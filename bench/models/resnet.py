"""ResNet-18/34/50/101/152 (He et al., CVPR 2016) and their ACNet / DBB versions, written on `ConvBN`.

Every conv+BN is a `bench.reparam.ConvBN`, so `to_deploy` folds each BN into its conv: the deploy form
loses the BN's 2C parameters and gains a C-channel conv bias, which is why the RepVGG paper lists
ResNet-18 at 11.68M and ResNet-50 at 25.53M instead of torchvision's 11.69M and 25.56M.

Layout and names follow the ResNets of the official DBB repository (github.com/DingXiaoH/
DiverseBranchBlock, resnet.py), the re-parameterization papers' own baselines: `stage0` (`conv1` 7x7/2
+ ReLU + 3x3/2 max-pool), `stage1`-`stage4`, blocks with `conv1`, `conv2`(, `conv3`) and `shortcut`,
then `gap` and `linear`. In the ACNet/DBB variants every kxk conv+BN with 1 < k < 7 becomes an ACBlock /
DiverseBranchBlock, as the official `conv_bn()` does; the 7x7 stem stays conv+BN unless
`replace_stem=True`. 1x1 convs are never replaced (there is nothing to add to a 1x1 kernel).

Bottleneck stride: by default on the 3x3 conv, as torchvision and the DBB repo do ("v1.5", 4.09 GMACs
for ResNet-50). The RepVGG paper's FLOPs for ResNet-50/101/152 (3.9/7.6/11.3 B) are those of the
original layout with the stride on the first 1x1 conv ("v1", 3.86/7.57/11.28 GMACs); build it with
`stride_in_1x1=True`. Parameters are identical in both layouts.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from bench.models.registry import register
from bench.reparam import ACBlock, ConvBN, DiverseBranchBlock

CONV_KINDS: dict[str, Callable[..., nn.Module]] = {
    "base": ConvBN,
    "acb": ACBlock,
    "dbb": DiverseBranchBlock,
}
"""What replaces a kxk conv+BN: plain (ConvBN), ACNet (ACBlock) or DBB (DiverseBranchBlock)."""


@dataclass(frozen=True)
class ConvFactory:
    """Builds every conv+BN of one network: the kind, deploy flag and replacement rule in one place."""

    kind: str = "base"
    deploy: bool = False
    replace_stem: bool = False

    def __call__(self, cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Module:
        replace = kernel > 1 and (kernel < 7 or self.replace_stem)
        cls = CONV_KINDS[self.kind] if replace else ConvBN
        return cls(cin, cout, kernel, stride=stride, padding=kernel // 2, deploy=self.deploy)

    def shortcut(self, cin: int, cout: int, stride: int) -> nn.Module:
        return self(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()


class BasicBlock(nn.Module):
    """relu(conv2(relu(conv1(x))) + shortcut(x)), both convs 3x3."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, conv: ConvFactory, stride_in_1x1: bool) -> None:
        super().__init__()
        self.conv1 = conv(cin, planes, 3, stride)
        self.conv2 = conv(planes, planes, 3)
        self.shortcut = conv.shortcut(cin, planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(F.relu(self.conv1(x)))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4), plus shortcut; the stride sits on the 3x3 unless `stride_in_1x1`."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, conv: ConvFactory, stride_in_1x1: bool) -> None:
        super().__init__()
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv(cin, planes, 1, s1)
        self.conv2 = conv(planes, planes, 3, s3)
        self.conv3 = conv(planes, planes * 4, 1)
        self.shortcut = conv.shortcut(cin, planes * 4, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv3(F.relu(self.conv2(F.relu(self.conv1(x)))))
        return F.relu(out + self.shortcut(x))


BLOCKS: dict[str, type[nn.Module]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nn.Module):
    def __init__(
        self,
        block: str,
        layers: tuple[int, int, int, int],
        conv: ConvFactory,
        num_classes: int = 1000,
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        block_cls = BLOCKS[block]
        self.stage0 = nn.Sequential(OrderedDict(
            conv1=conv(3, 64, 7, 2), relu=nn.ReLU(), maxpool=nn.MaxPool2d(3, stride=2, padding=1),
        ))
        cin = 64
        for index, (planes, depth) in enumerate(zip((64, 128, 256, 512), layers)):
            blocks = []
            for i in range(depth):
                stride = 2 if i == 0 and index > 0 else 1
                blocks.append(block_cls(cin, planes, stride, conv, stride_in_1x1))
                cin = planes * block_cls.expansion
            self.add_module(f"stage{index + 1}", nn.Sequential(*blocks))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(cin, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        for stage in (self.stage0, self.stage1, self.stage2, self.stage3, self.stage4):
            x = stage(x)
        return self.linear(self.gap(x).flatten(1))


@dataclass(frozen=True)
class ResNetSpec:
    block: str
    layers: tuple[int, int, int, int]
    kind: str = "base"


RESNET_VARIANTS: dict[str, ResNetSpec] = {
    "resnet18": ResNetSpec("basic", (2, 2, 2, 2)),
    "resnet34": ResNetSpec("basic", (3, 4, 6, 3)),
    "resnet50": ResNetSpec("bottleneck", (3, 4, 6, 3)),
    "resnet101": ResNetSpec("bottleneck", (3, 4, 23, 3)),
    "resnet152": ResNetSpec("bottleneck", (3, 8, 36, 3)),
    "acnet_resnet18": ResNetSpec("basic", (2, 2, 2, 2), "acb"),
    "acnet_resnet50": ResNetSpec("bottleneck", (3, 4, 6, 3), "acb"),
    "dbb_resnet18": ResNetSpec("basic", (2, 2, 2, 2), "dbb"),
    "dbb_resnet50": ResNetSpec("bottleneck", (3, 4, 6, 3), "dbb"),
}

FAMILY = {"base": "resnet", "acb": "acnet", "dbb": "dbb"}


def build_resnet(
    spec: ResNetSpec,
    deploy: bool = False,
    num_classes: int = 1000,
    stride_in_1x1: bool = False,
    replace_stem: bool = False,
) -> ResNet:
    conv = ConvFactory(spec.kind, deploy, replace_stem)
    return ResNet(spec.block, spec.layers, conv, num_classes, stride_in_1x1)


_NOTES = {
    "base": "bottleneck stride on the 3x3 (torchvision layout); the paper's GFLOPs match stride_in_1x1=True",
    "acb": "bottleneck stride on the 3x3, as in the official ACNet/DBB ResNet-50",
    "dbb": "bottleneck stride on the 3x3, as in the official DBB ResNet-50",
}
_KINDS = {"base": "", "acb": ", every 3x3 conv+BN an ACBlock", "dbb": ", every 3x3 conv+BN a DBB"}

for _name, _spec in RESNET_VARIANTS.items():
    _depth = sum(_spec.layers) * (2 if _spec.block == "basic" else 3) + 2
    register(
        _name, partial(build_resnet, _spec), family=FAMILY[_spec.kind],
        description=f"ResNet-{_depth}{_KINDS[_spec.kind]}",
        notes=_NOTES[_spec.kind] if _spec.block == "bottleneck" else "",
    )
