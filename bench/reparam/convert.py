"""`to_deploy(model)`: the whole-model conversion from training form to deploy form."""

from __future__ import annotations

import copy
import warnings

from torch import nn

from bench.reparam.fold import conv_from_kernel_bias, fold_conv_bn
from bench.reparam.graph_fold import fold_graph_conv_bn

DEPLOY_METHODS: tuple[str, ...] = ("switch_to_deploy", "reparameterize")
"""Methods by which blocks convert themselves in place: ours and the official repos' use
`switch_to_deploy()`; timm's re-parameterizable blocks (RepVGG, MobileOne, FastViT) use `reparameterize()`."""


def _require_eval(model: nn.Module) -> None:
    training = [name or type(model).__name__ for name, m in model.named_modules() if m.training]
    if training:
        raise RuntimeError(
            f"cannot convert a model in training mode ({len(training)} modules, first: '{training[0]}'); "
            "call model.eval() first: BatchNorm folds with its running statistics, used only in eval mode"
        )


def _deploy_method(module: nn.Module):
    for name in DEPLOY_METHODS:
        method = getattr(module, name, None)
        if callable(method):
            return method
    return None


def fuse_sequential_conv_bn(seq: nn.Sequential) -> None:
    """In place: every Conv2d directly followed by a matching BatchNorm2d becomes a conv with bias.

    The BN is replaced by nn.Identity so the Sequential's indices (and so its state-dict keys of the
    other layers) stay as they were.
    """
    names = list(seq._modules)
    for first, second in zip(names, names[1:]):
        conv, bn = seq._modules[first], seq._modules[second]
        if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)):
            continue
        if bn.num_features != conv.out_channels or bn.running_mean is None:
            continue
        kernel, bias = fold_conv_bn(conv, bn)
        seq._modules[first] = conv_from_kernel_bias(
            kernel, bias, like=conv.weight, stride=conv.stride, padding=conv.padding,
            dilation=conv.dilation, groups=conv.groups, padding_mode=conv.padding_mode,
        )
        seq._modules[second] = nn.Identity()


def _convert_in_place(module: nn.Module) -> None:
    """Top-down: a module that knows how to convert itself does so (and owns its subtree)."""
    method = _deploy_method(module)
    if method is not None:
        method()
        return
    if isinstance(module, nn.Sequential):
        fuse_sequential_conv_bn(module)
    for child in list(module.children()):
        _convert_in_place(child)


def to_deploy(model: nn.Module) -> nn.Module:
    """Return a deploy-form deep copy of `model`; `model` itself is left untouched and usable.

    Handles this package's blocks, third-party modules exposing `switch_to_deploy()` or `reparameterize()`,
    conv+BN pairs inside nn.Sequential, and then every conv -> BN pair left in the traced graph
    (`bench.reparam.graph_fold`; a model fx cannot trace gets a warning and Sequential folding only).
    Raises if any module is in training mode.
    """
    _require_eval(model)
    deployed = copy.deepcopy(model)
    _convert_in_place(deployed)
    found = fold_graph_conv_bn(deployed)
    if found.untraceable:
        warnings.warn(
            f"to_deploy: {type(model).__name__} cannot be traced by torch.fx ({found.untraceable}); "
            "conv->BN pairs were folded only where they are neighbours in an nn.Sequential",
            stacklevel=2,
        )
    return deployed.eval()
