"""README.md stays a newcomer's page (the two commands first, short) and every link of it and of docs/
leads somewhere: a page moved or renamed must not leave a dangling link, in the docs or under --help."""

from __future__ import annotations

import re
from pathlib import Path

from bench.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
README_MAX_CHARS = 15_000

_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but `-` and `_` dropped, spaces to `-`."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.MULTILINE | re.DOTALL)
    return {_slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE)}


def _broken_links(page: Path) -> list[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.MULTILINE | re.DOTALL)
    broken = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{page.name}: {target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{page.name}: {target} (no such heading)")
    return broken


def test_every_relative_link_resolves():
    assert PAGES, "docs/ holds no page"
    broken = [b for page in [README, *PAGES] for b in _broken_links(page)]
    assert not broken, broken


def test_every_page_is_linked_from_the_readme():
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in _LINK.findall(README.read_text())}
    assert not [p.name for p in PAGES if p.resolve() not in linked]


def test_the_readme_is_short_and_starts_with_the_two_commands():
    text = README.read_text()
    assert len(text) < README_MAX_CHARS, f"README.md has {len(text)} characters; the reference goes in docs/"
    first_section = text.split("\n## ", 2)[1]
    assert first_section.startswith("The two commands")
    assert "./run_all.sh" in first_section and "bash .ci/run" in first_section


def test_every_command_names_existing_pages_under_help():
    missing = [f"{name}: {page}" for name, command in COMMANDS.items() for page in command.docs
               if not (ROOT / page).is_file()]
    assert all(command.docs for command in COMMANDS.values())
    assert not missing, missing
