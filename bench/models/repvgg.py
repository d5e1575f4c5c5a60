"""RepVGG networks exactly as the official implementation (github.com/DingXiaoH/RepVGG, repvgg.py) builds them.

Five stages of RepVGG blocks: stage0 is one block of width min(64, 64a) with stride 2; stages 1-4 have
`num_blocks` blocks of widths 64a, 128a, 256a, 512b, each stage starting with stride 2; then global
average pooling (`gap`) and a linear classifier (`linear`). Variants are data: one row per name.

Grouped variants (g2, g4): the official code counts layers across stages starting from 1 at
`stage1.0` (stage0 is layer 0 and never grouped) and gives `groups` to layers 2, 4, ..., 26
(`optional_groupwise_layers`), i.e. every second block of the body up to layer 26.
Module names (`stage0`, `stage1.0`, ..., `rbr_dense.conv`, `rbr_identity`, `rbr_reparam`) match the
official ones, so its train-form and deploy-form checkpoints load with strict=True.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Sequence

from torch import Tensor, nn

from bench.models.registry import register
from bench.reparam import QARepVGGBlock, RepVGGBlock
from bench.usage import unknown

BLOCKS: dict[str, type[nn.Module]] = {"repvgg": RepVGGBlock, "qarepvgg": QARepVGGBlock}
"""Which block fills the RepVGG layout: the original, or QARepVGG (Chu et al. 2022) on the same layout."""

OPTIONAL_GROUPWISE_LAYERS: tuple[int, ...] = tuple(range(2, 27, 2))
"""Layer indices (stage1.0 = 1) that take `groups` in the official g2/g4 variants."""

BLOCKS_A = (2, 4, 14, 1)
BLOCKS_B = (4, 6, 16, 1)
BLOCKS_D = (8, 14, 24, 1)


@dataclass(frozen=True)
class RepVGGSpec:
    """One variant: blocks per stage 1-4, width multipliers (a, b), groups of the groupwise layers, SE."""

    num_blocks: tuple[int, int, int, int]
    width: tuple[float, float]
    groups: int = 1
    use_se: bool = False
    block: str = "repvgg"

    def groups_map(self) -> dict[int, int]:
        return {} if self.groups == 1 else {layer: self.groups for layer in OPTIONAL_GROUPWISE_LAYERS}


REPVGG_VARIANTS: dict[str, RepVGGSpec] = {
    "repvgg_a0": RepVGGSpec(BLOCKS_A, (0.75, 2.5)),
    "repvgg_a1": RepVGGSpec(BLOCKS_A, (1.0, 2.5)),
    "repvgg_a2": RepVGGSpec(BLOCKS_A, (1.5, 2.75)),
    "repvgg_b0": RepVGGSpec(BLOCKS_B, (1.0, 2.5)),
    "repvgg_b1": RepVGGSpec(BLOCKS_B, (2.0, 4.0)),
    "repvgg_b1g2": RepVGGSpec(BLOCKS_B, (2.0, 4.0), groups=2),
    "repvgg_b1g4": RepVGGSpec(BLOCKS_B, (2.0, 4.0), groups=4),
    "repvgg_b2": RepVGGSpec(BLOCKS_B, (2.5, 5.0)),
    "repvgg_b2g2": RepVGGSpec(BLOCKS_B, (2.5, 5.0), groups=2),
    "repvgg_b2g4": RepVGGSpec(BLOCKS_B, (2.5, 5.0), groups=4),
    "repvgg_b3": RepVGGSpec(BLOCKS_B, (3.0, 5.0)),
    "repvgg_b3g2": RepVGGSpec(BLOCKS_B, (3.0, 5.0), groups=2),
    "repvgg_b3g4": RepVGGSpec(BLOCKS_B, (3.0, 5.0), groups=4),
    "repvgg_d2se": RepVGGSpec(BLOCKS_D, (2.5, 5.0), use_se=True),
    "qarepvgg_a0": RepVGGSpec(BLOCKS_A, (0.75, 2.5), block="qarepvgg"),
    "qarepvgg_b0": RepVGGSpec(BLOCKS_B, (1.0, 2.5), block="qarepvgg"),
}


class RepVGG(nn.Module):
    """The official RepVGG body and head; `groups_map` maps layer index (stage1.0 = 1) to groups."""

    def __init__(
        self,
        num_blocks: Sequence[int],
        width_multiplier: Sequence[float],
        num_classes: int = 1000,
        groups_map: dict[int, int] | None = None,
        use_se: bool = False,
        deploy: bool = False,
        block: str = "repvgg",
    ) -> None:
        super().__init__()
        if block not in BLOCKS:
            raise unknown("RepVGG block", block, BLOCKS)
        if use_se and block != "repvgg":
            raise ValueError(f"SE is defined for the 'repvgg' block only, not '{block}'")
        if len(num_blocks) != 4 or len(width_multiplier) != 4:
            raise ValueError("RepVGG needs 4 stage depths and 4 width multipliers (stages 1-4)")
        groups_map = dict(groups_map or {})
        if 0 in groups_map:
            raise ValueError("stage0 (layer 0) cannot be grouped: its input has 3 channels")
        se = {"use_se": use_se} if use_se else {}
        block = partial(BLOCKS[block], kernel_size=3, padding=1, deploy=deploy, **se)
        in_planes = min(64, int(64 * width_multiplier[0]))
        self.stage0 = block(3, in_planes, stride=2)
        layer = 1
        for index, (base, depth, mult) in enumerate(zip((64, 128, 256, 512), num_blocks, width_multiplier)):
            planes = int(base * mult)
            blocks = []
            for stride in [2] + [1] * (depth - 1):
                blocks.append(block(in_planes, planes, stride=stride, groups=groups_map.get(layer, 1)))
                in_planes, layer = planes, layer + 1
            self.add_module(f"stage{index + 1}", nn.Sequential(*blocks))
        self.gap = nn.AdaptiveAvgPool2d(output_size=1)
        self.linear = nn.Linear(in_planes, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        for stage in (self.stage0, self.stage1, self.stage2, self.stage3, self.stage4):
            x = stage(x)
        return self.linear(self.gap(x).flatten(1))


def build_repvgg(spec: RepVGGSpec, deploy: bool = False, num_classes: int = 1000) -> RepVGG:
    a, b = spec.width
    return RepVGG(
        spec.num_blocks, (a, a, a, b), num_classes=num_classes, groups_map=spec.groups_map(),
        use_se=spec.use_se, deploy=deploy, block=spec.block,
    )


def _describe(spec: RepVGGSpec) -> str:
    a, b = spec.width
    extra = (f", groups {spec.groups} on layers 2,4,...,26" if spec.groups > 1 else "") + (
        ", SE" if spec.use_se else ""
    )
    name = "QARepVGG" if spec.block == "qarepvgg" else "RepVGG"
    return f"{name}, blocks 1-{'-'.join(map(str, spec.num_blocks))}, a={a:g} b={b:g}{extra}"


for _name, _spec in REPVGG_VARIANTS.items():
    register(_name, partial(build_repvgg, _spec), family=_spec.block, description=_describe(_spec))
