"""Which timm architectures are re-parameterizable: those with a module that converts itself by a convention
`bench.reparam.conventions` follows (`fuse`, `reparameterize`, `switch_to_deploy`, ...).

Building all ~1,400 timm models to look, even on the meta device, takes minutes; so the classes in timm
that define a convention method are found first, the model modules whose source names one of them give
the candidates, and each candidate is built on the meta device (no memory, no weights) to confirm.
"""

from __future__ import annotations

import fnmatch
import inspect
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

import torch

from bench.reparam.conventions import CONVENTIONS, convention_of
from bench.usage import UsageError


@dataclass(frozen=True)
class TimmArch:
    name: str
    family: str
    """timm's module for it (`repvit`, `byobnet`, ...): variants of one family share their blocks."""
    params: int


def _timm() -> ModuleType:
    try:
        import timm
    except ImportError as exc:
        raise ImportError("'timm:' models need the 'timm' package, which is not installed or does not import "
                          f"({exc}); install timm (pip install timm; it needs a torchvision that matches torch)"
                          ) from exc
    return timm


def _convention_classes() -> set[str]:
    """Names of the classes in timm that define a convention method themselves."""
    methods = {c.method for c in CONVENTIONS}
    found = set()
    for name, module in list(sys.modules.items()):
        if not name.startswith("timm."):
            continue
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and methods & set(vars(cls)):
                found.add(cls_name)
    return found


@lru_cache(maxsize=1)
def _family_of() -> dict[str, str]:
    timm = _timm()
    return {arch: module for module in timm.list_modules() for arch in timm.list_models(module=module)}


def _candidate_families() -> set[str]:
    classes = _convention_classes()
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, classes))) + r")\b") if classes else None
    families = set()
    for family in set(_family_of().values()):
        module = sys.modules.get(f"timm.models.{family}")
        try:
            source = inspect.getsource(module) if module is not None else ""
        except (OSError, TypeError):
            source = ""
        if pattern is not None and pattern.search(source):
            families.add(family)
    return families


def _meta_arch(name: str, family: str):
    """The architecture built on the meta device if it has a module with a convention, else None."""
    with torch.device("meta"):
        model = _timm().create_model(name, pretrained=False)
    if not any(convention_of(m) is not None for m in model.modules()):
        return None
    return TimmArch(name, family, sum(p.numel() for p in model.parameters()))


def reparameterizable(patterns: list[str]) -> list[TimmArch]:
    """The re-parameterizable timm architectures matching any of `patterns` (fnmatch globs on timm names,
    without the `timm:` prefix), in timm's order. A pattern that matches no timm name is an error."""
    families = _family_of()
    unmatched = [p for p in patterns if not fnmatch.filter(families, p)]
    if unmatched:
        raise UsageError(f"timm model(s) {', '.join(repr(p) for p in unmatched)} match no timm architecture; "
                         "see timm.list_models()")
    candidates = _candidate_families()
    chosen = [n for n in families if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    archs = [_meta_arch(n, families[n]) for n in chosen if families[n] in candidates]
    return [a for a in archs if a is not None]


def smallest_per_family(archs: list[TimmArch]) -> list[TimmArch]:
    """One variant per family: the one with the fewest parameters."""
    best: dict[str, TimmArch] = {}
    for arch in archs:
        if arch.family not in best or arch.params < best[arch.family].params:
            best[arch.family] = arch
    return sorted(best.values(), key=lambda a: a.family)
