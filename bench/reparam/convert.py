"""`to_deploy(model)`: the whole-model conversion from training form to deploy form."""

from __future__ import annotations

import copy
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Optional

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


YOLOV6_FUSE = "forward_fuse"
"""YOLOv6's `fuse_model` recipe: a `Conv` module with `conv`, `bn` and `forward_fuse` gets its BN folded
into `conv`, loses `bn`, and runs `forward_fuse` from then on."""


def _yolov6_fusable(module: nn.Module) -> bool:
    conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
    return (
        callable(getattr(module, YOLOV6_FUSE, None)) and type(conv) is nn.Conv2d
        and isinstance(bn, nn.BatchNorm2d) and bn.num_features == conv.out_channels
    )


def _yolov6_fuse(module: nn.Module) -> None:
    conv = module.conv
    kernel, bias = fold_conv_bn(conv, module.bn)
    module.conv = conv_from_kernel_bias(
        kernel, bias, like=conv.weight, stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
        groups=conv.groups, padding_mode=conv.padding_mode,
    )
    delattr(module, "bn")
    module.forward = getattr(module, YOLOV6_FUSE)


def _convert_in_place(module: nn.Module, used: Counter) -> None:
    """Top-down: a module that knows how to convert itself does so (and owns its subtree)."""
    method = _deploy_method(module)
    if method is not None:
        method()
        used[method.__name__] += 1
        return
    if _yolov6_fusable(module):
        _yolov6_fuse(module)
        used[YOLOV6_FUSE] += 1
        return
    if isinstance(module, nn.Sequential):
        before = sum(isinstance(m, nn.BatchNorm2d) for m in module.children())
        fuse_sequential_conv_bn(module)
        used["sequential conv->bn"] += before - sum(isinstance(m, nn.BatchNorm2d) for m in module.children())
    for child in list(module.children()):
        _convert_in_place(child, used)


@dataclass(frozen=True)
class Conversion:
    """A deploy form and how it was made: conventions used (name -> modules converted that way:
    `switch_to_deploy`, `reparameterize`, `forward_fuse`, `sequential conv->bn`, `graph conv->bn`), and
    why the graph could not be traced, if it could not."""

    model: nn.Module
    conventions: dict[str, int]
    untraceable: Optional[str] = None

    def describe(self) -> str:
        used = ", ".join(f"{name} x{count}" for name, count in self.conventions.items() if count) or "nothing"
        return f"converted with {used}" + (f" (not traceable: {self.untraceable})" if self.untraceable else "")


def convert(model: nn.Module) -> Conversion:
    """`to_deploy`, also saying which conventions it used."""
    _require_eval(model)
    deployed = copy.deepcopy(model)
    used: Counter = Counter()
    _convert_in_place(deployed, used)
    found = fold_graph_conv_bn(deployed)
    used["graph conv->bn"] += len(found.pairs)
    if found.untraceable:
        warnings.warn(
            f"to_deploy: {type(model).__name__} cannot be traced by torch.fx ({found.untraceable}); "
            "conv->BN pairs were folded only where they are neighbours in an nn.Sequential",
            stacklevel=3,
        )
    return Conversion(deployed.eval(), dict(used), found.untraceable)


def to_deploy(model: nn.Module) -> nn.Module:
    """Return a deploy-form deep copy of `model`; `model` itself is left untouched and usable.

    Handles this package's blocks, third-party modules exposing `switch_to_deploy()` or `reparameterize()`,
    YOLOv6 `Conv` modules (`forward_fuse`), conv+BN pairs inside nn.Sequential, and then every conv -> BN
    pair left in the traced graph (`bench.reparam.graph_fold`; a model fx cannot trace gets a warning and
    Sequential folding only). Raises if any module is in training mode. `convert` also says which
    conventions were used.
    """
    return convert(model).model
