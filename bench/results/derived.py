"""Quantities derived from a row's own fields, written once for the sweep, the report and compare.

throughput (samples/s) = batch_size * 1000 / latency_ms: from the median latency, not the mean, so one
slow outlier does not move it (optimum-benchmark's mean-based throughput is what this avoids). The same
formula turns a latency bound (p5, p90, a CI end) into a throughput bound; the slow end bounds it below.
"""

from __future__ import annotations

from typing import Optional, TypeVar, overload

import numpy as np
import pandas as pd

Values = TypeVar("Values", np.ndarray, pd.Series)


@overload
def throughput(batch_size: float, latency_ms: Optional[float]) -> Optional[float]: ...
@overload
def throughput(batch_size: Values | float, latency_ms: Values) -> Values: ...


def throughput(batch_size, latency_ms):
    """Samples per second of `batch_size` samples in `latency_ms`; None (or NaN) where the latency is
    missing or not positive."""
    if latency_ms is None or np.isscalar(latency_ms):
        if latency_ms is None or not latency_ms > 0:
            return None
        return float(batch_size) * 1000.0 / float(latency_ms)
    with np.errstate(divide="ignore", invalid="ignore"):
        positive = latency_ms.where(latency_ms > 0) if isinstance(latency_ms, pd.Series) else \
            np.where(latency_ms > 0, latency_ms, np.nan)
        return batch_size * 1000.0 / positive
