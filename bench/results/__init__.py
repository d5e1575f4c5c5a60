"""Result rows and their files (Parquet + CSV): the schema (with the precision table its axis reads),
writing, reading, the run-folder layout and the quantities derived from a row alone. Statistics over
rows live in `bench.compare`. Never imports torch.

`load`, `load_samples` and `RunWriter` are imported on first use, so `from bench.results.schema import AXES`
(done in every cell subprocess) does not pay for pandas and pyarrow.
"""

from __future__ import annotations

import importlib
from typing import Any

from bench.results.schema import AXES, COLUMNS, SCHEMA_VERSION, STATUSES, Result

_LAZY: dict[str, str] = {
    "load": "bench.results.read",
    "load_samples": "bench.results.read",
    "ResultsFileError": "bench.results.read",
    "RunWriter": "bench.results.io",
}

__all__ = ["AXES", "COLUMNS", "SCHEMA_VERSION", "STATUSES", "Result", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bench.results' has no attribute '{name}'")
