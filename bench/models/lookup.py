"""Whether model names can be built here, before anything runs: the registry's names, external
`timm:<name>` / `torchvision:<name>` names in their libraries' catalogues, own `FILE.py:factory` /
`pkg.mod:factory` models by resolving them. `bench run` plans with it and `bench profile` checks its
`--model` with it; nothing is built.

Nothing here imports torch at import time: a config is parsed before the registry is needed.
"""

from __future__ import annotations

import difflib
import importlib
from types import ModuleType
from typing import Callable, Iterable, Optional, Sequence

from bench.usage import UsageError, unknown


class UnknownModelError(UsageError):
    """A model name that cannot be built here; the message names the known ones or what is missing."""


def known_models() -> list[str]:
    """Registered model names (imported lazily: config parsing must not need torch until validation)."""
    from bench.models import names

    return list(names())


EXTERNAL_CATALOGUES: dict[str, Callable[[ModuleType], Iterable[str]]] = {
    "timm": lambda timm: timm.list_models(),
    "torchvision": lambda torchvision: torchvision.models.list_models(),
}
"""Library prefix -> the names it can build, so `timm:<name>` is checked when the sweep is planned (and by
`--dry-run`), not discovered missing in every cell."""


def external_problem(name: str) -> Optional[str]:
    """Why the external model `prefix:name` (or an own `FILE.py:factory` / `pkg.mod:factory`) cannot be
    built here (library missing, name unknown, factory broken), or None."""
    from bench.models.user import UserModelError, looks_like_user_spec

    if looks_like_user_spec(name, tuple(EXTERNAL_CATALOGUES)):
        from bench.models import info

        try:
            info(name)
        except UserModelError as exc:
            return str(exc)
        return None
    prefix, _, model = name.partition(":")
    if prefix not in EXTERNAL_CATALOGUES:
        return str(unknown(f"model '{name}': prefix", prefix, EXTERNAL_CATALOGUES))
    try:
        library = importlib.import_module(prefix)
    except ImportError:
        return f"model '{name}' needs the '{prefix}' package, which is not installed (pip install {prefix})"
    known = set(EXTERNAL_CATALOGUES[prefix](library))
    if model not in known:
        close = difflib.get_close_matches(model, sorted(known), n=5)
        hint = f"; close: {', '.join(close)}" if close else ""
        return f"model '{name}' is unknown to {prefix}{hint}"
    return None


def check_models(values: Sequence[str], known: Iterable[str] | None = None) -> tuple[str, ...]:
    """Reject unknown models, naming every known one; external names must resolve in their library."""
    known_list = list(known) if known is not None else known_models()
    if known is None:
        problems = [p for v in values if ":" in v and v not in known_list and (p := external_problem(v))]
        if problems:
            raise UnknownModelError("; ".join(problems))
    missing = [v for v in values if v not in known_list and not (known is None and ":" in v)]
    if missing:
        raise unknown("model", missing, known_list, error=UnknownModelError,
                      also=" (and external 'torchvision:<name>' / 'timm:<name>' models where installed)")
    return tuple(values)
