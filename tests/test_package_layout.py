"""The package layout the README's Layout section describes: imports point one way, and no module-level
`assert` holds an invariant that `python -O` would drop."""

from __future__ import annotations

import ast
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"

ALLOWED: dict[str, set[str]] = {
    "reparam": set(),
    "measure": set(),
    "results": set(),
    "models": {"reparam", "measure", "results"},
    "compare": {"results"},
    "report": {"results", "compare", "models"},
    "export": {"reparam", "models", "measure", "results"},
    "quant": {"reparam", "models", "export", "report"},
    "sweep": {"reparam", "models", "measure", "results", "export", "quant"},
    "profile": {"reparam", "models", "measure", "results", "compare"},
    "gpucheck": {"reparam", "models", "measure", "results", "sweep", "compare", "report", "profile"},
    "parity": {"reparam", "models", "results", "compare"},
    "api": {"reparam", "models", "measure"},
    "cli": set(),
    "__main__": {"cli"},
}
"""Package -> the packages it may import (module-level or inside a function)."""


def _package(path: Path) -> str:
    parts = path.relative_to(BENCH).parts
    return parts[0][:-3] if len(parts) == 1 else parts[0]


def _imported_packages(tree: ast.AST) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bench."):
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("bench.")]
        out |= {name.split(".")[1] for name in names}
    return out


def test_every_package_imports_only_the_packages_below_it():
    wrong = []
    for path in sorted(BENCH.rglob("*.py")):
        package = _package(path)
        used = _imported_packages(ast.parse(path.read_text())) - {package}
        extra = used - ALLOWED.get(package, set())
        if extra:
            wrong.append(f"{path.relative_to(BENCH)} imports {sorted(extra)}")
    assert not wrong, "\n".join(wrong)


def test_every_package_is_in_the_layout():
    packages = {_package(p) for p in BENCH.rglob("*.py")} - {"__init__"}
    assert packages <= set(ALLOWED), sorted(packages - set(ALLOWED))


def test_no_module_level_assert():
    found = [f"{p.relative_to(BENCH)}:{node.lineno}" for p in sorted(BENCH.rglob("*.py"))
             for node in ast.parse(p.read_text()).body if isinstance(node, ast.Assert)]
    assert not found, found
