"""Processes of a sweep's tree, read from /proc: a model that starts helper processes, and waiting (with a
deadline, never a fixed sleep) until every process of a tree is gone."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

SPAWNER = '''
import subprocess
import time

from torch import nn

from bench.reparam import RepVGGBlock

MARK = {mark!r}


class Spawner(nn.Sequential):
    """On its first call starts `sleep MARK` three ways (in its process group, in a session of its own,
    and daemonized by a shell that exits), then hangs, as a model with helper processes might."""

    def forward(self, x):
        subprocess.Popen(["sleep", MARK])
        subprocess.Popen(["sleep", MARK], start_new_session=True)
        subprocess.Popen(["sh", "-c", "sleep " + MARK + " &"]).wait()
        time.sleep(3600)


def build():
    return Spawner(RepVGGBlock(3, 8, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
'''


def spawner_model(tmp_path: Path) -> tuple[str, str]:
    """An own-model factory file whose forward starts `sleep MARK` processes and hangs; (spec, MARK)."""
    mark = f"{3000 + os.getpid() % 1000}.{time.time_ns() % 10**6}"
    path = tmp_path / "spawner.py"
    path.write_text(SPAWNER.format(mark=mark))
    return f"{path}:build", mark


def marked(mark: str) -> list[int]:
    """Live processes running `sleep MARK`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if argv[:2] == [b"sleep", mark.encode()] and alive(int(entry.name)):
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return found


def descendants(pid: int) -> set[int]:
    """Live descendants of `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            todo.append(child)
            found.add(child)
    return {p for p in found if alive(p)}


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout_s:g} s")
        time.sleep(0.05)
    return value


def assert_tree_gone(tree: set[int], mark: str, timeout_s: float) -> None:
    """Every process of `tree` and every `sleep MARK` ends within `timeout_s` (killed if not, then fail)."""
    try:
        wait_for(lambda: not marked(mark) and not [p for p in tree if alive(p)], timeout_s,
                 "the processes a model started were not all gone")
    finally:
        for pid in set(marked(mark)) | {p for p in tree if alive(p)}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)




def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
