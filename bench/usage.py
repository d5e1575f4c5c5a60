"""Bad input, said one way: one exception base and one message for a value that is not among the choices.

Every command's bad input (an unknown name or option, a config or file that does not fit, a device this
machine lacks) raises a `UsageError`, and `bench.cli` turns it into one line and exit 2 in one place, so
no command keeps its own list of exceptions that mean "exit 2". It is a ValueError, so code that already
catches ValueError keeps working. This module imports nothing from bench, so every package may use it.
"""

from __future__ import annotations

import difflib
from typing import Iterable

EXIT_USAGE = 2
"""Exit status of a command stopped by bad input (docs/sweeps.md, Exit codes)."""


class UsageError(ValueError):
    """Input the user can fix; the message names what was wrong and what would be valid."""


def unknown(kind: str, value: object, choices: Iterable[object], also: str = "",
            error: type[UsageError] = UsageError) -> UsageError:
    """`kind 'value' is unknown (did you mean 'x'?); known: a, b, c` plus `also` (e.g. "; external models:
    ..."), as an `error` (a UsageError subclass where callers catch a narrower one) for the caller to raise.

    `value` may be a list or tuple of several unknown values; the hint holds the choices within
    difflib's default similarity (0.6) of any of them, so a typo names its fix and a far-off value
    does not invent one."""
    values = [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
    known = [str(c) for c in choices]
    close = list(dict.fromkeys(m for v in values for m in difflib.get_close_matches(v, known, n=3)))
    hint = f" (did you mean {_quoted(close)}?)" if close else ""
    return error(f"{kind} {_quoted(values)} is unknown{hint}; known: {', '.join(known) or 'none'}{also}")


def pick(kind: str, spec: str, choices: Iterable[str]) -> list[str]:
    """The comma-separated `spec` (e.g. `--dtypes float32,float64`) as a list, each entry one of `choices`;
    an empty list or an unknown entry is a UsageError from `unknown`."""
    chosen = [c.strip() for c in spec.split(",") if c.strip()]
    valid = list(choices)
    missing = [c for c in chosen if c not in valid]
    if missing or not chosen:
        raise unknown(kind, missing or spec, valid)
    return chosen


def _quoted(names: list[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)
