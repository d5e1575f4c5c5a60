"""`to_deploy(model)`: the most complete exact conversion from training form to deploy form.

In this order, on a deep copy:
1. YOLOv6's `fuse_model`: modules with `conv`, `bn` and `forward_fuse` fold their BN (its blocks need it first);
2. every module that converts itself does so by its convention (`conventions`: fuse, reparameterize,
   switch_to_deploy, merge_dilated_branches), from the model down; the conversion then descends into
   what the module became, so blocks a parent's conversion left alone (timm's GhostModuleV3 inside a
   GhostBottleneckV3) are converted too;
3. this package's generic folds on what remains, wherever the traced forward has them (`graph_fold`:
   conv -> BN, BN -> unpadded conv, Linear -> BN1d, BN1d -> Linear), which also fold the post-BN YOLOv6's
   QARepVGG keeps for quantization-aware training.
Every step is exact; a BatchNorm that folds nowhere stays (none is replaced by Identity unfolded). The
`Conversion` says which conventions and folds ran and how often: rows record it as `deploy_recipe`.
"""

from __future__ import annotations

import copy
import warnings
from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn

from bench.reparam import conventions, kinds
from bench.reparam.fold import fold_conv_bn
from bench.reparam.graph_fold import fold_graph_pairs


def _require_eval(model: nn.Module) -> None:
    training = [name or type(model).__name__ for name, m in model.named_modules() if m.training]
    if training:
        raise RuntimeError(
            f"cannot convert a model in training mode ({len(training)} modules, first: '{training[0]}'); "
            "call model.eval() first: BatchNorm folds with its running statistics, used only in eval mode"
        )


@torch.no_grad()
def fuse_sequential_conv_bn(seq: nn.Sequential) -> int:
    """In place: every conv directly followed by a BatchNorm in `seq` folds (kinds as `kinds` proves them:
    a BatchNormAct2d keeps its activation, a Conv2dSame its padding). Returns how many pairs folded.

    The BN is replaced by what is left of it (nn.Identity, or the activation) so the Sequential's indices,
    and so the state-dict keys of its other layers, stay as they were. Only an exact nn.Sequential: a
    subclass may compute something else in its forward.
    """
    if type(seq) is not nn.Sequential:
        raise TypeError(f"fuse_sequential_conv_bn takes an nn.Sequential, not a {type(seq).__name__}")
    names, folded = list(seq._modules), 0
    for first, second in zip(names, names[1:]):
        conv, bn = seq._modules[first], seq._modules[second]
        if kinds.is_conv(conv) and kinds.is_bn2d(bn) and bn.num_features == conv.out_channels:
            kinds.write_weight_bias(conv, *fold_conv_bn(conv, bn))
            seq._modules[second] = kinds.bn_remainder(bn)
            folded += 1
    return folded


def _convert_tree(module: nn.Module, path: str, used: Counter) -> nn.Module:
    module, method = conventions.apply(module, path)
    if method is not None:
        used[method] += 1
    for name, child in list(module.named_children()):
        new = _convert_tree(child, f"{path}.{name}" if path else name, used)
        if new is not child:
            module._modules[name] = new
    return module


@dataclass(frozen=True)
class Conversion:
    """A deploy form and how it was made: conventions and folds used (name -> modules converted or pairs
    folded that way: `forward_fuse`, `fuse`, `reparameterize`, `switch_to_deploy`, `merge_dilated_branches`,
    `conv->bn`, `bn->conv`, `linear->bn1d`, `bn1d->linear`), and the parts fx could not trace, if any."""

    model: nn.Module
    conventions: dict[str, int]
    untraceable: tuple[tuple[str, str], ...] = ()

    @property
    def recipe(self) -> str:
        """`name xN, ...` in the order they ran, or 'nothing'; what a row's `deploy_recipe` says."""
        return ", ".join(f"{name} x{count}" for name, count in self.conventions.items() if count) or "nothing"

    def describe(self) -> str:
        text = f"converted with {self.recipe}"
        if self.untraceable:
            path, reason = self.untraceable[0]
            text += (f" ({len(self.untraceable)} part(s) not traceable, first '{path or 'the model'}': {reason}; "
                     "their children were folded on their own)")
        return text


def convert(model: nn.Module) -> Conversion:
    """`to_deploy`, also saying which conventions and folds it used."""
    _require_eval(model)
    used: Counter = Counter()
    with torch.no_grad():
        deployed = copy.deepcopy(model)
        used[conventions.FORWARD_FUSE] += conventions.fuse_forward_fuse_modules(deployed)
        deployed = _convert_tree(deployed, "", used)
        found = fold_graph_pairs(deployed)
    used.update(found.counts())
    if found.untraceable:
        path, reason = found.untraceable[0]
        warnings.warn(
            f"to_deploy: {len(found.untraceable)} part(s) of {type(model).__name__} cannot be traced by torch.fx "
            f"(first '{path or 'the model'}': {reason}); folds across their children are not found, folds "
            "inside each child are", stacklevel=3,
        )
    return Conversion(deployed.eval(), {name: count for name, count in used.items() if count}, found.untraceable)


def to_deploy(model: nn.Module) -> nn.Module:
    """Return a deploy-form deep copy of `model`; `model` itself is left untouched and usable.

    The most complete exact conversion (see the module docstring): third-party conventions, then this
    package's folds wherever the traced forward has them. Raises if any module is in training mode.
    `convert` also says which conventions and folds were used.
    """
    return convert(model).model
