"""The axes of a sweep and the values each may take.

The names are the `AXES` of `bench.results.schema` (one TOML key per axis), so a config, a cell and a row
all spell an axis the same way. `model` is checked against `bench.models.names()`; `batch_size` and
`resolution` are positive integers; the others are closed sets listed here.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from bench.results.schema import AXES

CHOICES: dict[str, tuple[str, ...]] = {
    "form": ("train", "deploy"),
    "mode": ("infer", "train_step"),
    "precision": ("fp32", "tf32", "fp16", "bf16"),
    "memory_format": ("contiguous", "channels_last"),
    "runtime": ("eager", "cudagraph", "compile"),
}
"""Closed value sets. `train_step` = forward + backward + SGD step (training forms only)."""

INT_AXES: tuple[str, ...] = ("batch_size", "resolution")

assert set(CHOICES) | set(INT_AXES) | {"model"} == set(AXES), "axes out of sync with the schema"


class ConfigError(ValueError):
    """A config, preset or override is invalid; raised before anything runs."""


def known_models() -> list[str]:
    """Registered model names (imported lazily: config parsing must not need torch until validation)."""
    from bench.models import names

    return list(names())


def _resolves(name: str) -> bool:
    """External names (`torchvision:resnet50`, `timm:repvgg_a2`) are open-ended: ask the registry."""
    if ":" not in name:
        return False
    from bench.models import info
    from bench.models.user import UserModelError

    try:
        info(name)
    except UserModelError as exc:  # an own model (FILE.py:factory): say what is wrong with it
        raise ConfigError(str(exc)) from exc
    except (ValueError, ImportError, KeyError):
        return False
    return True


def check_models(values: Sequence[str], known: Iterable[str] | None = None) -> tuple[str, ...]:
    """Reject unknown models, naming every known one."""
    known_list = list(known) if known is not None else known_models()
    unknown = [v for v in values if v not in known_list and not (known is None and _resolves(v))]
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
