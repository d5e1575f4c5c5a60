"""SIGTERM handled like Ctrl-C: `kill PID`, a CI job's cancel or a cluster's pre-emption stops the sweep
the same orderly way (the cell in flight is killed, its temporary folder removed, a message printed), and
the sweep exits 143 (128 + SIGTERM), the code a shell gives a process killed by SIGTERM."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Any, Iterator

from bench.sweep.verdict import EXIT_INTERRUPTED, EXIT_TERMINATED


class Terminated(BaseException):
    """Raised in the main thread when SIGTERM arrives (BaseException, like KeyboardInterrupt, so the
    executor's cleanup runs and no `except Exception` swallows it)."""


def _raise(signum: int, frame: Any) -> None:
    raise Terminated(signal.Signals(signum).name)


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises `Terminated`; the previous handler is restored after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupted_exit(exc: BaseException, where: str) -> int:
    """Say that a sweep stopped on Ctrl-C or SIGTERM and where its finished cells are; the exit code:
    130 (Ctrl-C) or 143 (SIGTERM)."""
    why = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
    print(f"\n{why}: finished cells are in {where}; run the same command again to resume", file=sys.stderr)
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
