"""No cell outlives the sweep: the kernel kills a cell the instant its parent dies, from the first instant.

The process's own parent watcher (`watch_parent`) starts only after `import torch`, which
takes seconds; a sweep SIGKILLed in that window used to leave the cell measuring unsupervised. Linux's
`prctl(PR_SET_PDEATHSIG, SIGKILL)`, set between fork and exec (`subprocess.Popen(preexec_fn=...)`),
survives the exec and holds before the child runs a single line. The parent may already have died
between fork and prctl; the child then sees another parent pid and exits at once. Elsewhere (no prctl)
the function does nothing and the cell's watcher remains the only guard.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from typing import Callable, Optional

PR_SET_PDEATHSIG = 1
"""From <linux/prctl.h>."""


def _prctl() -> Optional[Callable[..., int]]:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    return getattr(libc, "prctl", None)


_PRCTL = _prctl()
"""Loaded in the parent, so the forked child only makes one foreign call (no dlopen after fork)."""


def die_with_parent() -> Optional[Callable[[], None]]:
    """A `preexec_fn` that makes the child get SIGKILL when this process dies; None where unsupported."""
    if _PRCTL is None:
        return None
    parent = os.getpid()
    prctl = _PRCTL

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(3)

    return preexec


def watch_parent() -> None:
    """Inside a cell or worker: exit if the sweep process dies (killed, Ctrl-C'd), so no orphan keeps
    measuring where prctl is not available."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, daemon=True).start()
