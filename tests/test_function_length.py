"""No function in bench/ is longer than 50 lines (docstring included): a longer one is asking to be split
(DESIGN.md's habit, held here so it stays true)."""

from __future__ import annotations

import ast
from pathlib import Path

MAX_LINES = 50
BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_no_function_in_bench_is_longer_than_50_lines():
    long = []
    for path in sorted(BENCH.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{path.relative_to(BENCH.parent)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "split these functions: " + "; ".join(long)
