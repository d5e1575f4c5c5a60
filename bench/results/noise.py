"""The noise flag, in one place: the sweep's progress line, the report and `bench baseline update` all
call a cell noisy by the same rule, the measurement's own.

A cell is noisy when its timing said so: the row's `noisy` column is `bench.measure.stats.LatencyStats.noisy`
(relative IQR above `NOISY_REL_IQR`, as torch.utils.benchmark's Measurement judges itself). Its median
is still reported, but a spread this wide on a steady workload means interference (other processes,
clock changes); it must not become a regression baseline unnoticed. Rows written before that column
existed are judged by the rule of their time: latency CV (std / mean) above LEGACY_NOISY_CV.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

LEGACY_NOISY_CV = 0.05
"""For rows without a `noisy` value only (older files): latency CV above which they were flagged (5%)."""


def _known(value: Any) -> bool:
    return value is not None and value == value  # NaN != NaN


def is_noisy(row: Any) -> bool:
    """One row (a `Result` or a namedtuple of one): its own `noisy`, else the legacy CV rule."""
    own = getattr(row, "noisy", None)
    if _known(own):
        return bool(own)
    try:
        return float(getattr(row, "latency_cv", None)) > LEGACY_NOISY_CV
    except (TypeError, ValueError):
        return False


def noisy_reason(row: Any) -> str:
    """Why a noisy row is noisy, e.g. 'noisy (IQR 12.0% of the median)' or, for an older row,
    'noisy (latency CV 8.0% > 5%)'."""
    if _known(getattr(row, "noisy", None)):
        try:
            return f"noisy (IQR {float(row.latency_ms_iqr) / float(row.latency_ms_median):.1%} of the median)"
        except (AttributeError, TypeError, ValueError, ZeroDivisionError):
            return "noisy (the measurement says so)"
    return f"noisy (latency CV {float(row.latency_cv):.1%} > {LEGACY_NOISY_CV:.0%})"


def noisy_mask(df: pd.DataFrame) -> pd.Series:
    """`is_noisy` of every row."""
    legacy = (pd.to_numeric(df["latency_cv"], errors="coerce").gt(LEGACY_NOISY_CV) if "latency_cv" in df.columns
              else pd.Series(False, index=df.index))
    if "noisy" not in df.columns:
        return legacy
    own = df["noisy"]
    known = own.map(_known).astype(bool)
    return own.where(known, legacy).astype(bool)
