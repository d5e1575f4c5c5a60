"""The noise flag, in one place: the sweep's progress line, the report and `bench baseline update` all
call a cell noisy by the same rule.

A cell is noisy when its latency coefficient of variation (std / mean of the raw samples) exceeds
NOISY_CV. Its median is still reported, but a spread this wide on a steady workload means interference
(other processes, clock changes); it must not become a regression baseline unnoticed.
"""

from __future__ import annotations

from typing import Any, Optional

import pandas as pd

NOISY_CV = 0.05
"""Latency CV above which a cell is flagged noisy (5%)."""


def is_noisy(latency_cv: Optional[Any]) -> bool:
    """One value: True when it is a number above NOISY_CV (None / NaN = not known = not flagged)."""
    try:
        return float(latency_cv) > NOISY_CV
    except (TypeError, ValueError):
        return False


def noisy_mask(df: pd.DataFrame) -> pd.Series:
    """True where the latency CV exceeds NOISY_CV."""
    if "latency_cv" not in df.columns:
        return pd.Series(False, index=df.index)
    return pd.to_numeric(df["latency_cv"], errors="coerce").gt(NOISY_CV)
