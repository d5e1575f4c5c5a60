"""`torchvision:<name>` and `timm:<name>`: models from those libraries, with random weights, never a download.

Deploy forms: timm models get `bench.reparam.to_deploy`, the form a sweep times: it follows timm's
conventions (each block's `fuse()` / `reparameterize()` / `switch_to_deploy()`, as timm's
`reparameterize_model` calls them), descends into what they converted and folds what they leave
(`bench verify --models 'timm:*'` checks it folds at least what timm's recipe folds, with the same output);
torchvision models get conv+BN folding by `torch.fx.experimental.optimization.fuse`, else `to_deploy`. A
deploy form is built in eval mode, since folding uses the BN running statistics.
"""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType
from typing import Callable

import torch
from torch import nn

from bench.models.registry import Builder, ModelInfo, register_prefix
from bench.reparam import to_deploy
from bench.usage import unknown


def _import(package: str, name: str) -> ModuleType:
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise ImportError(
            f"model '{package}:{name}' needs the '{package}' package, which is not installed; "
            f"install {package} (pip install {package})"
        ) from exc


def _torchvision_deploy(model: nn.Module) -> nn.Module:
    """Only the tracing is guarded: a model fx cannot trace is folded by `to_deploy`, with a warning that
    says why fx failed; an error while folding the traced graph propagates."""
    from torch.fx.experimental.optimization import fuse

    model.eval()
    try:
        traced = torch.fx.symbolic_trace(model)
    except Exception as exc:  # noqa: BLE001 - fx raises many types (TraceError, TypeError, NotImplementedError, ...)
        first = str(exc).splitlines()[0] if str(exc) else ""
        warnings.warn(f"torch.fx cannot trace {type(model).__name__} ({type(exc).__name__}: {first}); its deploy "
                      "form is folded by bench.reparam.to_deploy instead", RuntimeWarning, stacklevel=2)
        return to_deploy(model)
    return fuse(traced, no_trace=True).eval()


def _timm_builder(name: str) -> Builder:
    def build(deploy: bool = False, **kwargs) -> nn.Module:
        timm = _import("timm", name)
        model = timm.create_model(name, pretrained=False, **kwargs)
        return to_deploy(model.eval()) if deploy else model

    return build


def _torchvision_builder(name: str) -> Builder:
    def build(deploy: bool = False, **kwargs) -> nn.Module:
        models = _import("torchvision", name).models
        known = set(models.list_models())
        if name not in known:
            raise unknown("torchvision model", name, sorted(known))
        model = models.get_model(name, weights=None, **kwargs)
        return _torchvision_deploy(model) if deploy else model

    return build


def _resolver(prefix: str, make: Callable[[str], Builder]) -> Callable[[str], tuple[ModelInfo, Builder]]:
    def resolve(name: str) -> tuple[ModelInfo, Builder]:
        info = ModelInfo(f"{prefix}:{name}", family=prefix, description=f"{prefix} model '{name}'", external=True)
        return info, make(name)

    return resolve


register_prefix("timm", _resolver("timm", _timm_builder))
register_prefix("torchvision", _resolver("torchvision", _torchvision_builder))
