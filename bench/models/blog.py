"""The "RepVGG-style fast block" network of the PyTorch blog post "Implementing RepVGG in PyTorch"
(F. S. Zuppichini, Towards Data Science; code at github.com/FrancescoSaverioZuppichini/RepVgg), which
claims a 108x speedup at batch 128 on a GTX 1080 Ti (1.45 s vs 0.0134 s for 32 forwards).

The article describes "four stages of two blocks, widths 64, 128, 256, 512". Its blocks are RepVGG blocks
(3x3 conv+BN, 1x1 conv+BN, identity BN when shapes allow, ReLU; no SE, no groups) and its network has no
classification head. Two entries:

- `blog_repvgg`, the network as described: a stem block 3->64 with stride 2, then four stages of two
  blocks of widths 64/128/256/512 whose first block has stride 2 (output stride 32, like RepVGG).
- `blog_repvgg_code`, the network its `benchmark.py` actually timed: `RepVGG([64,128,256,512],[2,2,2,2])`
  builds the stem stage (one block 3->64, stride 2) and then zips 3 width pairs with the 4 depths, so only
  three stages of two blocks (128/256/512) are built: 7 blocks, output stride 16.

Both return the feature map by default (`num_classes=0`), like the blog; `num_classes > 0` adds the
RepVGG head (global average pooling + linear).
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

from torch import Tensor, nn

from bench.models.registry import register_model
from bench.reparam import RepVGGBlock


class BlogRepVGG(nn.Module):
    """Stem block, then `stages` of RepVGG blocks (first block of each with stride 2), optional head."""

    def __init__(
        self,
        widths: Sequence[int],
        depths: Sequence[int],
        stem_width: int = 64,
        num_classes: int = 0,
        deploy: bool = False,
    ) -> None:
        super().__init__()
        block = partial(RepVGGBlock, kernel_size=3, padding=1, deploy=deploy)
        self.stem = block(3, stem_width, stride=2)
        cin, stages = stem_width, []
        for width, depth in zip(widths, depths, strict=True):
            stages.append(nn.Sequential(*(block(cin if i == 0 else width, width, stride=2 if i == 0 else 1)
                                          for i in range(depth))))
            cin = width
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes)) \
            if num_classes > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.stages(self.stem(x)))


@register_model(
    family="blog",
    description="blog fast-block net as described: stem + 4 stages x 2 blocks, 64/128/256/512",
    notes="no classification head (as in the blog); num_classes>0 adds one",
)
def blog_repvgg(deploy: bool = False, num_classes: int = 0) -> BlogRepVGG:
    return BlogRepVGG((64, 128, 256, 512), (2, 2, 2, 2), num_classes=num_classes, deploy=deploy)


@register_model(
    family="blog",
    description="blog fast-block net as its benchmark.py builds it: stem + 3 stages x 2 blocks, 128/256/512",
    notes="the blog's zip() drops its fourth stage; no classification head",
)
def blog_repvgg_code(deploy: bool = False, num_classes: int = 0) -> BlogRepVGG:
    return BlogRepVGG((128, 256, 512), (2, 2, 2), num_classes=num_classes, deploy=deploy)

