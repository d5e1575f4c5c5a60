"""Conv -> BatchNorm folding wherever a model's graph has the pair, found by `torch.fx` tracing.

`nn.Sequential` folding only sees a conv and a BN that are neighbours in one container; a ResNet written
as `self.bn1(self.conv1(x))` (torchvision's) keeps every BN. Tracing the forward finds each BN whose
input is the output of exactly one conv call, used nowhere else; that conv is replaced by the folded conv
and the BN by `nn.Identity`, in place, so the module tree and the other state-dict keys stay as they were.
A model that fx cannot trace (data-dependent control flow) is reported, and Sequential folding is all
it gets.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Optional

import torch.fx
from torch import nn

from bench.reparam.fold import conv_from_kernel_bias, fold_conv_bn


@dataclass(frozen=True)
class ConvBNPair:
    conv: str
    bn: str


@dataclass(frozen=True)
class GraphPairs:
    """The foldable conv -> BN pairs of a model, or why its graph could not be read."""

    pairs: tuple[ConvBNPair, ...]
    untraceable: Optional[str] = None


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (
        type(conv) is nn.Conv2d and isinstance(bn, nn.BatchNorm2d) and bn.running_mean is not None
        and bn.num_features == conv.out_channels
    )


def find_conv_bn_pairs(model: nn.Module) -> GraphPairs:
    """Pairs (conv, BN) where the BN's only input is a conv's output that nothing else reads, and each
    module is called once in the whole forward (a shared module cannot be folded for one call only)."""
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as exc:  # fx raises many types (TraceError, TypeError, NotImplementedError, ...)
        return GraphPairs((), untraceable=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    modules = dict(model.named_modules())
    calls = Counter(node.target for node in graph.nodes if node.op == "call_module")
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or len(node.args) != 1 or node.kwargs:
            continue
        source = node.args[0]
        if not isinstance(source, torch.fx.Node) or source.op != "call_module" or len(source.users) != 1:
            continue
        conv, bn = modules[source.target], modules[node.target]
        if _foldable(conv, bn) and calls[source.target] == 1 and calls[node.target] == 1:
            pairs.append(ConvBNPair(source.target, node.target))
    return GraphPairs(tuple(pairs))


def fold_graph_conv_bn(model: nn.Module) -> GraphPairs:
    """In place: fold every pair `find_conv_bn_pairs` finds; returns what it found (and folded)."""
    found = find_conv_bn_pairs(model)
    for pair in found.pairs:
        conv, bn = model.get_submodule(pair.conv), model.get_submodule(pair.bn)
        kernel, bias = fold_conv_bn(conv, bn)
        fused = conv_from_kernel_bias(
            kernel, bias, like=conv.weight, stride=conv.stride, padding=conv.padding,
            dilation=conv.dilation, groups=conv.groups, padding_mode=conv.padding_mode,
        )
        _set_submodule(model, pair.conv, fused)
        _set_submodule(model, pair.bn, nn.Identity())
    return found


def _set_submodule(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    owner = model.get_submodule(parent) if parent else model
    owner._modules[name] = module
