"""The package layout docs/layout.md describes: imports point one way, the page states the same arrows and
maps every package, and no module-level `assert` holds an invariant that `python -O` would drop."""

from __future__ import annotations

import ast
import re
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
LAYOUT_PAGE = BENCH.parent / "docs" / "layout.md"

ALLOWED: dict[str, set[str]] = {
    "reparam": set(),
    "measure": {"results"},
    "results": set(),
    "models": {"reparam", "measure", "results"},
    "compare": {"results"},
    "report": {"results", "compare", "models"},
    "export": {"reparam", "models", "measure", "results"},
    "quant": {"reparam", "models", "export", "report"},
    "sweep": {"reparam", "models", "measure", "results", "export", "quant"},
    "profile": {"reparam", "models", "measure", "results"},
    "gpucheck": {"reparam", "models", "measure", "results", "sweep", "report", "profile"},
    "parity": {"reparam", "models", "results"},
    "api": {"reparam", "models", "measure", "results"},
    "cli": set(),
    "__main__": {"cli"},
    "usage": set(),
}
"""Package -> the packages it may import (module-level or inside a function)."""

EVERYONE_MAY_IMPORT: set[str] = {"usage"}
"""Imported by every package besides its ALLOWED: `bench/usage.py`, the one way to say "bad input"."""


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
        extra = used - ALLOWED.get(package, set()) - EVERYONE_MAY_IMPORT
        if extra:
            wrong.append(f"{path.relative_to(BENCH)} imports {sorted(extra)}")
    assert not wrong, "\n".join(wrong)


def test_every_package_is_in_the_layout():
    packages = {_package(p) for p in BENCH.rglob("*.py")} - {"__init__"}
    assert packages <= set(ALLOWED), sorted(packages - set(ALLOWED))


def test_the_layout_page_states_these_arrows():
    """The page's table (`| `package` | `a`, `b` |`) is this file's ALLOWED, so neither drifts alone."""
    rows = re.findall(r"^\| `(\w+)` \| (.*) \|$", LAYOUT_PAGE.read_text(), re.MULTILINE)
    stated = {package: set(re.findall(r"`(\w+)`", imports)) for package, imports in rows}
    assert stated == ALLOWED, {p: (stated.get(p), ALLOWED.get(p)) for p in set(stated) | set(ALLOWED)
                               if stated.get(p) != ALLOWED.get(p)}


def test_the_layout_page_maps_every_package():
    text = LAYOUT_PAGE.read_text()
    packages = {_package(p) for p in BENCH.rglob("*.py")} - {"__init__"}
    missing = [p for p in sorted(packages) if not re.search(rf"bench/{p}/|\b{p}\.py", text)]
    assert not missing, f"{LAYOUT_PAGE.name} does not name {missing}"


def test_no_module_level_assert():
    found = [f"{p.relative_to(BENCH)}:{node.lineno}" for p in sorted(BENCH.rglob("*.py"))
             for node in ast.parse(p.read_text()).body if isinstance(node, ast.Assert)]
    assert not found, found
