"""MobileOne networks as apple/ml-mobileone (mobileone.py) builds them (Vasu et al., CVPR 2023).

stage0 is one 3x3 MobileOne block of width min(64, 64 * w1), stride 2, one conv branch; stages 1-4 have
2, 8, 10, 1 layers of widths 64 w1, 128 w2, 256 w3, 512 w4, each layer a depthwise 3x3 block then a
pointwise 1x1 block (the first layer of a stage with stride 2); then global average pooling (`gap`) and
a linear classifier (`linear`). S0 over-parameterizes every stage-1..4 block with 4 conv branches, the
others with 1. S4 puts SE on both blocks of the last 5 layers of stage 3 and of stage 4's layer.
Variants are data: one row per name. Module names match the official ones, so its train-form and
deploy-form checkpoints load with strict=True.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Sequence

from torch import Tensor, nn

from bench.models.registry import register
from bench.reparam import MobileOneBlock

MOBILEONE_BLOCKS: tuple[int, int, int, int] = (2, 8, 10, 1)
"""Layers per stage 1-4 in every official variant."""


@dataclass(frozen=True)
class MobileOneSpec:
    """One variant: width multipliers of stages 1-4, conv branches per block, SE in the last layers."""

    width: tuple[float, float, float, float]
    num_conv_branches: int = 1
    use_se: bool = False


MOBILEONE_VARIANTS: dict[str, MobileOneSpec] = {
    "mobileone_s0": MobileOneSpec((0.75, 1.0, 1.0, 2.0), num_conv_branches=4),
    "mobileone_s1": MobileOneSpec((1.5, 1.5, 2.0, 2.5)),
    "mobileone_s2": MobileOneSpec((1.5, 2.0, 2.5, 4.0)),
    "mobileone_s3": MobileOneSpec((2.0, 2.5, 3.0, 4.0)),
    "mobileone_s4": MobileOneSpec((3.0, 3.5, 3.5, 4.0), use_se=True),
}


class MobileOne(nn.Module):
    """The official MobileOne body and head."""

    def __init__(
        self,
        width_multipliers: Sequence[float],
        num_blocks: Sequence[int] = MOBILEONE_BLOCKS,
        num_classes: int = 1000,
        num_conv_branches: int = 1,
        use_se: bool = False,
        deploy: bool = False,
    ) -> None:
        super().__init__()
        if len(num_blocks) != 4 or len(width_multipliers) != 4:
            raise ValueError("MobileOne needs 4 stage depths and 4 width multipliers (stages 1-4)")
        self.in_planes = min(64, int(64 * width_multipliers[0]))
        self.stage0 = MobileOneBlock(3, self.in_planes, 3, stride=2, padding=1, deploy=deploy)
        se_layers = (0, 0, num_blocks[2] // 2, num_blocks[3]) if use_se else (0, 0, 0, 0)
        block = partial(MobileOneBlock, deploy=deploy, num_conv_branches=num_conv_branches)
        for index, (base, depth, mult, with_se) in enumerate(
            zip((64, 128, 256, 512), num_blocks, width_multipliers, se_layers)
        ):
            planes = int(base * mult)
            layers = []
            for layer in range(depth):
                stride, se = (2 if layer == 0 else 1), layer >= depth - with_se
                channels = self.in_planes
                layers.append(block(channels, channels, 3, stride, 1, groups=channels, use_se=se))
                layers.append(block(channels, planes, 1, 1, 0, use_se=se))
                self.in_planes = planes
            self.add_module(f"stage{index + 1}", nn.Sequential(*layers))
        self.gap = nn.AdaptiveAvgPool2d(output_size=1)
        self.linear = nn.Linear(self.in_planes, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        for stage in (self.stage0, self.stage1, self.stage2, self.stage3, self.stage4):
            x = stage(x)
        return self.linear(self.gap(x).flatten(1))


def build_mobileone(spec: MobileOneSpec, deploy: bool = False, num_classes: int = 1000) -> MobileOne:
    return MobileOne(
        spec.width, num_classes=num_classes, num_conv_branches=spec.num_conv_branches,
        use_se=spec.use_se, deploy=deploy,
    )


def _describe(spec: MobileOneSpec) -> str:
    widths = "/".join(f"{w:g}" for w in spec.width)
    extra = ", SE in the last 5 + 1 layers" if spec.use_se else ""
    return f"MobileOne, layers 2-8-10-1, widths x{widths}, {spec.num_conv_branches} conv branch(es){extra}"


for _name, _spec in MOBILEONE_VARIANTS.items():
    register(_name, partial(build_mobileone, _spec), family="mobileone", description=_describe(_spec))
