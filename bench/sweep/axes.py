"""The axes of a sweep and the values each may take.

The names are the `AXES` of `bench.results.schema` (one TOML key per axis), so a config, a cell and a row
all spell an axis the same way. `model` is checked against `bench.models.names()`; `batch_size` and
`resolution` are positive integers; the others are closed sets listed here.
"""

from __future__ import annotations

import difflib
import importlib
from types import ModuleType
from typing import Callable, Iterable, Optional, Sequence

from bench.results.schema import AXES, AXIS_SPECS

CHOICES: dict[str, tuple[str, ...]] = {a.name: a.choices for a in AXIS_SPECS if a.choices is not None}
"""Closed value sets, from `bench.results.schema.AXIS_SPECS`."""

INT_AXES: tuple[str, ...] = tuple(a.name for a in AXIS_SPECS if a.type is int)


class ConfigError(ValueError):
    """A config, preset or override is invalid; raised before anything runs."""


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
        return f"model '{name}': prefix '{prefix}' is unknown; external prefixes: {', '.join(EXTERNAL_CATALOGUES)}"
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
            raise ConfigError("; ".join(problems))
    unknown = [v for v in values if v not in known_list and not (known is None and ":" in v)]
    if unknown:
        raise ConfigError(
            f"model {', '.join(repr(u) for u in unknown)} is unknown; known: {', '.join(known_list)}"
            " (and external 'torchvision:<name>' / 'timm:<name>' models where installed)"
        )
    return tuple(values)


def check_choice(axis: str, values: Sequence[str]) -> tuple[str, ...]:
    valid = CHOICES[axis]
    for value in values:
        if value not in valid:
            raise ConfigError(f"{axis} '{value}' is unknown; valid: {', '.join(valid)}")
    return tuple(values)


def check_ints(axis: str, values: Sequence[object]) -> tuple[int, ...]:
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{axis} must be positive integers; got {value!r}")
        out.append(value)
    return tuple(out)


def check_axis(axis: str, values: Sequence[object]) -> tuple:
    """Validate one axis' values; an empty list is an error (it would make an empty sweep silently)."""
    if axis not in AXES:
        raise ConfigError(f"axis '{axis}' is unknown; valid: {', '.join(AXES)}")
    if isinstance(values, (str, int)) or not isinstance(values, Sequence):
        raise ConfigError(f"axis '{axis}' must be a list, got {values!r}")
    if not values:
        raise ConfigError(f"axis '{axis}' is empty; give at least one value")
    if len(set(values)) != len(values):
        raise ConfigError(f"axis '{axis}' repeats a value: {list(values)}")
    if axis in INT_AXES:
        return check_ints(axis, values)
    if axis == "model":
        return tuple(str(v) for v in values)
    return check_choice(axis, [str(v) for v in values])
