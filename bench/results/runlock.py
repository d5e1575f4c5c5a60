"""One sweep per run folder: a second `bench run` on a folder that a live sweep holds refuses at once.

Two sweeps into one folder would both measure every cell, each slowing the other's timings. The lock is
an advisory `flock` on `<run_dir>/.sweep.lock`, held for the whole sweep; the kernel drops it when the
holder exits, even by SIGKILL, so a killed sweep never leaves a stale lock. The holder writes its pid into
the file so the refusal can name it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from bench.usage import UsageError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".sweep.lock"


class RunLockedError(UsageError, RuntimeError):
    """Another live process is sweeping into this run folder."""


@contextlib.contextmanager
def run_lock(run_dir: Path | str) -> Iterator[None]:
    """Hold the run folder's sweep lock for the block, or raise RunLockedError naming the holder's pid."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield
        return
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise RunLockedError(
                f"{run_dir} is being swept by another process (pid {holder}); wait for it to finish, stop "
                "it, or pass --run-id NAME to measure into another folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def holder(run_dir: Path | str) -> str | None:
    """The pid of the live sweep holding `run_dir`'s lock ("unknown" if it wrote none), or None when no
    sweep holds it. Opens the lock file read-only: a reader writes nothing into a folder a sweep holds."""
    if fcntl is None:
        return None
    try:
        fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
