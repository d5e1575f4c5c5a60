"""Result rows, their files (Parquet + CSV), and comparisons between runs. Never imports torch."""

from bench.results.schema import AXES, COLUMNS, SCHEMA_VERSION, STATUSES, Result

__all__ = ["AXES", "COLUMNS", "SCHEMA_VERSION", "STATUSES", "Result"]
