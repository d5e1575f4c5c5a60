"""A model's forward as torch.fx graphs, as far as fx can trace it.

One graph for the whole model when fx can trace it. Otherwise the model is traced with its untraceable
children kept as single calls (leaves), and each such child is traced the same way on its own; a module
whose own forward fx cannot trace even then is recorded with the reason, and its children are traced on
their own. Each module's calls thus appear in exactly one graph, and folds inside an untraceable part are
still found. Tracing runs on a structural copy that shares the tensors, so a forward that caches
something on its module while traced (timm's attention-bias caches) leaves the model untouched.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Iterator, Optional

import torch.fx
from torch import nn

from bench.reparam.kinds import is_handled_subclass

CONTAINERS: tuple[type, ...] = (nn.ModuleList, nn.ModuleDict)
"""Containers are never called; their elements are."""


@dataclass(frozen=True)
class TracedPart:
    """The graph of the module at `path` (from the model, "" = the model itself); node targets are relative."""

    path: str
    graph: torch.fx.Graph


@dataclass(frozen=True)
class Traced:
    parts: tuple[TracedPart, ...]
    untraceable: tuple[tuple[str, str], ...] = ()
    """(path, reason) of each module with children whose own forward fx cannot trace; its children were
    traced alone."""


class _Tracer(torch.fx.Tracer):
    def __init__(self, leaves: frozenset[int]) -> None:
        super().__init__()
        self.leaves = leaves

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return id(m) in self.leaves or is_handled_subclass(m) or super().is_leaf_module(m, module_qualified_name)


def _try(module: nn.Module, leaves: frozenset[int]) -> tuple[Optional[torch.fx.Graph], str]:
    try:
        return _Tracer(leaves).trace(module), ""
    except Exception as exc:  # fx raises many types (TraceError, TypeError, NotImplementedError, ...)
        first = str(exc).splitlines()[0] if str(exc) else ""
        return None, f"{type(exc).__name__}: {first}"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def callable_children(module: nn.Module, path: str = "") -> Iterator[tuple[str, nn.Module]]:
    """(path, module) of the modules `module`'s forward can call directly: children, with containers opened."""
    for name, child in module.named_children():
        if isinstance(child, CONTAINERS):
            yield from callable_children(child, _join(path, name))
        else:
            yield _join(path, name), child


def _trace_part(module: nn.Module, path: str, parts: list, untraceable: list) -> None:
    graph, reason = _try(module, frozenset())
    children = list(callable_children(module))
    leaves: frozenset[int] = frozenset()
    if graph is None:
        tracer = _Tracer(frozenset())
        leaves = frozenset(id(child) for name, child in children
                           if not tracer.is_leaf_module(child, name) and _try(child, frozenset())[0] is None)
        graph = _try(module, leaves)[0] if leaves else None
    if graph is None:
        if children:  # a module without children has nothing to fold inside
            untraceable.append((path, reason))
        leaves = frozenset(id(child) for _, child in children)
    else:
        parts.append(TracedPart(path, graph))
    for name, child in children:
        if id(child) in leaves:
            _trace_part(child, _join(path, name), parts, untraceable)


def trace_parts(model: nn.Module) -> Traced:
    """The graphs of `model`, see the module docstring."""
    tensors = {id(t): t for t in (*model.parameters(), *model.buffers())}
    clone = copy.deepcopy(model, memo=dict(tensors))
    parts: list[TracedPart] = []
    untraceable: list[tuple[str, str]] = []
    _trace_part(clone, "", parts, untraceable)
    return Traced(tuple(parts), tuple(untraceable))
