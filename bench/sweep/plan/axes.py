"""The axes of a sweep and the values each may take.

The names are the `AXES` of `bench.results.schema` (one TOML key per axis), so a config, a cell and a row
all spell an axis the same way. `model` is checked by `bench.models.lookup`; `batch_size` and
`resolution` are positive integers; the others are closed sets listed here.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from bench.results.schema import AXES, AXIS_SPECS, CHOICES
from bench.usage import UsageError, unknown

INT_AXES: tuple[str, ...] = tuple(a.name for a in AXIS_SPECS if a.type is int)


class ConfigError(UsageError):
    """A config, preset or override is invalid; raised before anything runs."""


def check_models(values: Sequence[str], known: Iterable[str] | None = None) -> tuple[str, ...]:
    """`bench.models.lookup.check_models`, its refusal as a `ConfigError`."""
    from bench.models.lookup import UnknownModelError, check_models as check

    try:
        return check(values, known)
    except UnknownModelError as exc:
        raise ConfigError(str(exc)) from None


def check_choice(axis: str, values: Sequence[str]) -> tuple[str, ...]:
    valid = CHOICES[axis]
    for value in values:
        if value not in valid:
            raise unknown(axis, value, valid, error=ConfigError)
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
        raise unknown("axis", axis, AXES, error=ConfigError)
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
