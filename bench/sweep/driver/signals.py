"""One signal story for `bench run`: Ctrl-C (SIGINT) and SIGTERM stop the command the same orderly way at
any instant, with a message that says what the stop left behind, and exit 130 (Ctrl-C) or 143 (SIGTERM),
the codes a shell gives a process killed by those signals.

SIGTERM (`kill PID`, a CI job's cancel, a cluster's pre-emption) raises `Terminated` in the main thread, as
Ctrl-C raises KeyboardInterrupt, so the same cleanup runs (the unit in flight is killed with every process
it started, temporary folders removed, the run's tables flushed). The command tracks how far it got in a
`Stage`; `stopped_exit` prints the message of that step (`STOP_MESSAGES`) and returns the exit code.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Optional

from bench.sweep.driver.verdict import EXIT_INTERRUPTED, EXIT_TERMINATED

if TYPE_CHECKING:
    from types import FrameType


class Terminated(BaseException):
    """Raised in the main thread when SIGTERM arrives (BaseException, like KeyboardInterrupt, so the
    executor's cleanup runs and no `except Exception` swallows it)."""


def _raise(signum: int, frame: Optional[FrameType]) -> None:
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


STOP_MESSAGES: dict[str, str] = {
    "starting": "before the sweep started: nothing was measured",
    "probing": "during the --max-batch search: nothing was written to {where}; run the same command again to "
               "search",
    "sweeping": "while sweeping: finished cells are in {where}; run the same command again to resume",
    "judging": "after every unit was measured: all rows are in {where}; run the same command again to judge "
               "the run (nothing is measured again)",
}
"""What a stop at each step of `bench run` leaves behind: the message after "interrupted (Ctrl-C)" or
"terminated (SIGTERM)"."""


@dataclass
class Stage:
    """How far a `bench run` got (a key of `STOP_MESSAGES`) and where its rows go, once known."""

    step: str = "starting"
    where: str = ""

    def enter(self, step: str, where: str = "") -> None:
        if step not in STOP_MESSAGES:
            raise ValueError(f"step '{step}' is unknown; known: {', '.join(STOP_MESSAGES)}")
        self.step, self.where = step, where or self.where

    def says(self) -> str:
        return STOP_MESSAGES[self.step].format(where=self.where)


def stopped_exit(exc: BaseException, stage: Stage) -> int:
    """Say that the command stopped on Ctrl-C or SIGTERM and what that left; 130 (Ctrl-C) or 143 (SIGTERM)."""
    why = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"
    print(f"\n{why} {stage.says()}", file=sys.stderr, flush=True)
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
