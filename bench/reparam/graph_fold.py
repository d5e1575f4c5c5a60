"""Folds of two neighbouring calls, found wherever the traced forward has them (`graph_trace`), not only as
neighbours in an nn.Sequential: conv -> BN, BN -> conv that pads nothing, Linear -> BN1d, BN1d -> Linear.

A pair (A, B) folds when B's only input is A's output (possibly through nn.Identity calls, e.g. YOLOv6's
QARepVGG `bn(se(rbr_reparam(x)))` with `se = Identity`), nothing else reads A's output, and each of A and B
is called once in the forward and registered once in the model (a shared module cannot be folded for one
of its uses). Module kinds are exact (`kinds`). Linear/BN1d pairs are exact only on (N, features) inputs,
so they fold only where the graph proves A's input 2-d (after `flatten(x, 1)`, `nn.Flatten()` or
`view/reshape` to two sizes). The folded module keeps its type and place (weight and bias written in place);
the other becomes what is left of it (`nn.Identity`, or a BatchNormAct2d's `drop` and `act`), so the module
tree and the other state-dict keys stay as they were. A BatchNorm that folds nowhere stays: nothing here
replaces an unfolded BatchNorm.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.fx
from torch import nn

from bench.reparam import kinds
from bench.reparam.algebra import fuse_bn_conv, fuse_bn_linear, fuse_linear_bn
from bench.reparam.fold import bn_scale_shift, conv_kernel_bias, fold_bn, linear_weight_bias
from bench.reparam.graph_trace import trace_parts

Fold = Callable[[nn.Module, nn.Module], tuple[nn.Module, nn.Module]]


def _conv_bn(conv: nn.Module, bn: nn.Module) -> tuple[nn.Module, nn.Module]:
    return kinds.write_weight_bias(conv, *fold_bn(conv.weight, conv.bias, bn)), kinds.bn_remainder(bn)


def _bn_conv(bn: nn.Module, conv: nn.Module) -> tuple[nn.Module, nn.Module]:
    folded = fuse_bn_conv(*bn_scale_shift(bn), *conv_kernel_bias(conv), groups=conv.groups)
    return nn.Identity(), kinds.write_weight_bias(conv, *folded)


def _linear_bn(linear: nn.Module, bn: nn.Module) -> tuple[nn.Module, nn.Module]:
    return kinds.write_weight_bias(linear, *fuse_linear_bn(*linear_weight_bias(linear), *bn_scale_shift(bn))), \
        nn.Identity()


def _bn_linear(bn: nn.Module, linear: nn.Module) -> tuple[nn.Module, nn.Module]:
    return nn.Identity(), kinds.write_weight_bias(linear, *fuse_bn_linear(*bn_scale_shift(bn),
                                                                          *linear_weight_bias(linear)))


@dataclass(frozen=True)
class PairKind:
    """One fold of two neighbouring calls: which modules, whether their sizes fit, and the fold."""

    name: str
    first: Callable[[nn.Module], bool]
    second: Callable[[nn.Module], bool]
    fits: Callable[[nn.Module, nn.Module], bool]
    fold: Fold
    features_only: bool = False
    """Exact only on (N, features) inputs: the first module's input must be proven 2-d in the graph."""


PAIR_KINDS: tuple[PairKind, ...] = (
    PairKind("conv->bn", kinds.is_conv, kinds.is_bn2d, lambda c, b: b.num_features == c.out_channels, _conv_bn),
    PairKind("bn->conv", kinds.is_plain_bn2d, kinds.is_unpadded_conv,
             lambda b, c: b.num_features == c.in_channels, _bn_conv),
    PairKind("linear->bn1d", kinds.is_linear, kinds.is_bn1d, lambda lin, b: b.num_features == lin.out_features,
             _linear_bn, features_only=True),
    PairKind("bn1d->linear", kinds.is_bn1d, kinds.is_linear, lambda b, lin: b.num_features == lin.in_features,
             _bn_linear, features_only=True),
)


@dataclass(frozen=True)
class Pair:
    kind: str
    first: str
    second: str


@dataclass(frozen=True)
class GraphPairs:
    """The foldable pairs of a model, and the modules fx could not trace ((path, reason), see graph_trace)."""

    pairs: tuple[Pair, ...]
    untraceable: tuple[tuple[str, str], ...] = ()

    def counts(self) -> Counter:
        return Counter(pair.kind for pair in self.pairs)


RANK_KEEPING: tuple[type, ...] = (
    nn.Identity, nn.Dropout, nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid,
    nn.Tanh, nn.LeakyReLU, nn.BatchNorm1d, nn.Linear, nn.LayerNorm,
)
"""Modules whose output has the rank of their input."""


def _arg(node: torch.fx.Node, index: int, name: str, default):
    return node.args[index] if len(node.args) > index else node.kwargs.get(name, default)


def _rank(node: object, modules: dict[str, nn.Module], depth: int = 0) -> Optional[int]:
    """The rank of a node's value where the graph alone proves it, else None."""
    if not isinstance(node, torch.fx.Node) or depth > 32:
        return None
    if node.op == "call_module":
        module = modules[node.target]
        if type(module) is nn.Flatten:
            return module.start_dim + 1 if module.end_dim == -1 and module.start_dim >= 0 else None
        if type(module) in RANK_KEEPING and node.args:
            return _rank(node.args[0], modules, depth + 1)
        return None
    if node.target in (torch.flatten, "flatten") and node.op in ("call_function", "call_method"):
        start, end = _arg(node, 1, "start_dim", 0), _arg(node, 2, "end_dim", -1)
        return start + 1 if end == -1 and isinstance(start, int) and start >= 0 else None
    if node.op == "call_method" and node.target in ("view", "reshape") and not node.kwargs:
        sizes = node.args[1:]
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
            sizes = sizes[0]
        return len(sizes) or None
    return None


def _producer(node: torch.fx.Node, modules: dict[str, nn.Module]) -> Optional[torch.fx.Node]:
    """The call_module node whose output reaches `node`'s only argument through nn.Identity calls alone,
    each read by nothing else; None if there is no such node."""
    if len(node.args) != 1 or node.kwargs or not isinstance(node.args[0], torch.fx.Node):
        return None
    source = node.args[0]
    while True:
        if source.op != "call_module" or len(source.users) != 1:
            return None
        if type(modules[source.target]) is not nn.Identity:
            return source
        if len(source.args) != 1 or not isinstance(source.args[0], torch.fx.Node):
            return None
        source = source.args[0]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def find_pairs(model: nn.Module) -> GraphPairs:
    """Every foldable pair (`PAIR_KINDS`) in the traced forward; a module takes part in at most one."""
    traced = trace_parts(model)
    registered = Counter(id(m) for _, m in model.named_modules(remove_duplicate=False))
    pairs: list[Pair] = []
    taken: set[str] = set()
    for part in traced.parts:
        owner = model.get_submodule(part.path) if part.path else model
        modules = dict(owner.named_modules())
        calls = Counter(n.target for n in part.graph.nodes if n.op == "call_module")
        for node in part.graph.nodes:
            if node.op != "call_module":
                continue
            source = _producer(node, modules)
            if source is None:
                continue
            first, second = modules[source.target], modules[node.target]
            names = (_join(part.path, source.target), _join(part.path, node.target))
            if calls[source.target] != 1 or calls[node.target] != 1 or taken & set(names):
                continue
            if registered[id(first)] != 1 or registered[id(second)] != 1:
                continue
            for kind in PAIR_KINDS:
                if not (kind.first(first) and kind.second(second) and kind.fits(first, second)):
                    continue
                if kind.features_only and _rank(source.args[0] if source.args else None, modules) != 2:
                    continue
                pairs.append(Pair(kind.name, *names))
                taken.update(names)
                break
    return GraphPairs(tuple(pairs), traced.untraceable)


def _set_submodule(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    owner = model.get_submodule(parent) if parent else model
    owner._modules[name] = module


def fold_graph_pairs(model: nn.Module, max_rounds: int = 8) -> GraphPairs:
    """In place: fold every pair `find_pairs` finds, again until none is left (a fold can make a new pair,
    e.g. BN -> conv -> BN, where one module could take part in only one fold per round). Returns all the
    pairs folded, and the untraceable parts of the last round."""
    folded: list[Pair] = []
    kinds_by_name = {kind.name: kind for kind in PAIR_KINDS}
    for _ in range(max_rounds):
        found = find_pairs(model)
        for pair in found.pairs:
            first, second = kinds_by_name[pair.kind].fold(model.get_submodule(pair.first),
                                                          model.get_submodule(pair.second))
            _set_submodule(model, pair.first, first)
            _set_submodule(model, pair.second, second)
        folded.extend(found.pairs)
        if not found.pairs:
            return GraphPairs(tuple(folded), found.untraceable)
    return GraphPairs(tuple(folded), found.untraceable)
