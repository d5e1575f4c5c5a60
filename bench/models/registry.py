"""The model registry: a name maps to a builder and a `ModelInfo`, as in timm's `@register_model`.

Families register their variants from data tables (see `repvgg.py`, `mobileone.py`, `resnet.py`); a single network can
use the decorator. Names with a prefix (`torchvision:resnet50`, `timm:repvgg_a2`) resolve through
`bench.models.external` and are not listed by `names()`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Optional

from torch import nn

from bench.models import user as _user
from bench.models.paper import PaperFigures, paper_figures
from bench.usage import UsageError, unknown

Builder = Callable[..., nn.Module]
"""`builder(deploy: bool = False, **kwargs) -> nn.Module`"""


@dataclass(frozen=True)
class ModelInfo:
    """What the harness knows about a model without building it."""

    name: str
    family: str
    default_resolution: int = 224
    paper: Optional[PaperFigures] = None
    description: str = ""
    notes: str = ""
    external: bool = False
    source: str = ""
    """For own models (`bench.models.user`): the file or module and its sha256."""
    source_origin: str = ""
    source_sha256: str = ""
    """For own models: the file (or `module (file)`) alone, and the file's sha256, as rows record them."""

    @property
    def provenance(self) -> tuple[str, Optional[str]]:
        """(where the model's code came from, the sha256 of its file or None), as rows record them:
        the own model's file or module; the library for `timm:` / `torchvision:` names; else "registry"."""
        if self.source_origin:
            return self.source_origin, self.source_sha256 or None
        return (self.family if self.external else "registry"), None


@dataclass(frozen=True)
class _Entry:
    info: ModelInfo
    builder: Builder


_REGISTRY: dict[str, _Entry] = {}
_PREFIXES: dict[str, Callable[[str], tuple[ModelInfo, Builder]]] = {}


def register(name: str, builder: Builder, family: str, description: str = "", notes: str = "") -> None:
    """Register `builder` under `name`; the paper's figures are attached from `bench.models.paper`."""
    if name in _REGISTRY:
        raise ValueError(f"model '{name}' is already registered")
    info = ModelInfo(name, family, paper=paper_figures(name), description=description, notes=notes)
    _REGISTRY[name] = _Entry(info, builder)


def register_model(family: str, description: str = "", notes: str = "") -> Callable[[Builder], Builder]:
    """Decorator: register a builder function under its own name."""

    def wrap(fn: Builder) -> Builder:
        doc_lines = (fn.__doc__ or "").strip().splitlines()
        register(fn.__name__, fn, family, description or (doc_lines[0] if doc_lines else ""), notes)
        return fn

    return wrap


def register_prefix(prefix: str, resolver: Callable[[str], tuple[ModelInfo, Builder]]) -> None:
    """Names `prefix:<rest>` are resolved by `resolver(rest)` when used."""
    _PREFIXES[prefix] = resolver


FAMILY_MODULES: tuple[str, ...] = (
    "bench.models.repvgg", "bench.models.mobileone", "bench.models.resnet", "bench.models.blog",
    "bench.models.external",
)
"""Modules that register models when imported; a new family is one more entry here."""


def _ensure_loaded() -> None:
    for module in FAMILY_MODULES:
        importlib.import_module(module)


def names() -> list[str]:
    """Registered built-in model names (external `prefix:name` entries are open-ended, so not listed)."""
    _ensure_loaded()
    return sorted(_REGISTRY)


def _unknown(name: str) -> UsageError:
    prefixes = ", ".join(f"'{p}:<name>'" for p in sorted(_PREFIXES))
    return unknown("model", name, names(), also=f"; external models: {prefixes}")


def _resolve(name: str) -> _Entry:
    _ensure_loaded()
    if name in _REGISTRY:
        return _REGISTRY[name]
    prefix, sep, rest = name.partition(":")
    if sep and prefix in _PREFIXES:
        if not rest:
            raise UsageError(f"model '{name}' names no model after '{prefix}:'")
        info, builder = _PREFIXES[prefix](rest)
        return _Entry(info, builder)
    if _user.looks_like_user_spec(name, tuple(_PREFIXES)):
        own = _user.resolve(name)
        return _Entry(ModelInfo(name, "user", source=own.source, source_origin=own.origin,
                                 source_sha256=own.sha256, external=True), _user.builder(own))
    raise _unknown(name)


def info(name: str) -> ModelInfo:
    return _resolve(name).info


def create(name: str, deploy: bool = False, **kwargs) -> nn.Module:
    """Build `name` in its training form, or directly in its deploy form with `deploy=True`.

    The module is returned as built (training mode); callers choose eval(). A deploy form built here has
    the same structure and state-dict keys as `bench.reparam.to_deploy` applied to the training form.
    """
    return _resolve(name).builder(deploy=deploy, **kwargs)
