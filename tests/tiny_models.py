"""Own-model files the tests write and load by path (`FILE.py:build`), so conventions are tested with small
modules written here rather than with timm or torchvision."""

from __future__ import annotations

import textwrap

TWO_REPVGG_BLOCKS = textwrap.dedent("""
    from torch import nn
    from bench.reparam import RepVGGBlock

    def build(width=8, deploy=False):
        return nn.Sequential(RepVGGBlock(3, width, stride=2), RepVGGBlock(width, width),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))
""")
"""Two RepVGG blocks and a classifier head: a re-parameterizable network that builds and folds in
milliseconds (`deploy` is accepted and ignored, as `bench quant` passes it)."""
