"""The state-dict keys and shapes of the official RepVGG code (DingXiaoH/RepVGG, repvgg.py), re-derived
from its rules rather than from our modules, so the tests compare two independent descriptions."""

from __future__ import annotations

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
GROUPWISE = set(range(2, 27, 2))


def official_blocks(num_blocks, a, b, groups=1):
    """(prefix, in, out, stride, groups) per block, as the official RepVGG.__init__ and _make_stage."""
    in_planes = min(64, int(64 * a))
    blocks = [("stage0", 3, in_planes, 2, 1)]
    layer = 1
    for stage, (base, depth, mult) in enumerate(zip((64, 128, 256, 512), num_blocks, (a, a, a, b)), 1):
        planes = int(base * mult)
        for i in range(depth):
            g = groups if layer in GROUPWISE else 1
            blocks.append((f"stage{stage}.{i}", in_planes, planes, 2 if i == 0 else 1, g))
            in_planes, layer = planes, layer + 1
    return blocks, in_planes


def official_state_shapes(num_blocks, a, b, groups=1, use_se=False, deploy=False, num_classes=1000):
    """{key: shape} of an official train-form or deploy-form checkpoint."""
    blocks, last = official_blocks(num_blocks, a, b, groups)
    shapes = {}
    for prefix, cin, cout, stride, g in blocks:
        if deploy:
            shapes[f"{prefix}.rbr_reparam.weight"] = (cout, cin // g, 3, 3)
            shapes[f"{prefix}.rbr_reparam.bias"] = (cout,)
        else:
            for branch, k in (("rbr_dense", 3), ("rbr_1x1", 1)):
                shapes[f"{prefix}.{branch}.conv.weight"] = (cout, cin // g, k, k)
                shapes.update({f"{prefix}.{branch}.bn.{n}": (() if n == "num_batches_tracked" else (cout,))
                               for n in BN})
            if cin == cout and stride == 1:
                shapes.update({f"{prefix}.rbr_identity.{n}": (() if n == "num_batches_tracked" else (cin,))
                               for n in BN})
        if use_se:
            internal = cout // 16
            shapes[f"{prefix}.se.down.weight"] = (internal, cout, 1, 1)
            shapes[f"{prefix}.se.down.bias"] = (internal,)
            shapes[f"{prefix}.se.up.weight"] = (cout, internal, 1, 1)
            shapes[f"{prefix}.se.up.bias"] = (cout,)
    shapes["linear.weight"] = (num_classes, last)
    shapes["linear.bias"] = (num_classes,)
    return shapes
