"""Nothing a sweep starts outlives it: not a cell or worker, nor any process a model or compiler started.

Each cell or worker runs under a reaper, `python -m bench.sweep.local.orphans CMD...` (`popen_contained`): two
small processes between the caller and the command.

- The anchor, the caller's child, gets SIGTERM the instant the caller dies (Linux's
  `prctl(PR_SET_PDEATHSIG)`, set between fork and exec, so it holds before the anchor runs a line; a
  caller that died between fork and prctl is noticed by the pid check and the child exits at once). The
  caller is the sweep, or the Ray task that ran the unit (which Ray kills when its driver dies). The
  anchor passes a stop on to the guard and waits for it.
- The guard, the anchor's child, is a child subreaper (`PR_SET_CHILD_SUBREAPER`): whatever the command
  starts, even in a new session or by double fork, stays its descendant when the intermediate processes
  end. On SIGTERM, SIGHUP or SIGINT, and when the command ends, it SIGKILLs every descendant and reaps
  them, then leaves with the command's status (or the signal that stopped it). It gets SIGTERM when the
  anchor dies, also when the anchor is SIGKILLed, as Ray does to the children of a Ray worker that exits:
  that is why there are two.
- The command gets SIGKILL when the guard dies, so even a SIGKILLed guard leaves no worker measuring.

`stop_tree` is the orderly stop (SIGTERM to the anchor, then SIGKILL to its process group as a fallback).
Where Linux's prctl is missing the command runs as is, in its own process group, and the worker's parent
watcher (`watch_parent`, started after `import torch`) is the only guard.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

if TYPE_CHECKING:
    from types import FrameType

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
"""From <linux/prctl.h>."""
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
"""Signals on which the reaper stops its tree."""
STOP_GRACE_S = 5.0
"""How long `stop_tree` and the reaper wait for processes to go before giving up on them."""


def _prctl() -> Optional[Callable[..., int]]:
    """libc's prctl, from the symbols already loaded (no library search: the reaper starts often)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    return getattr(libc, "prctl", None)


_PRCTL = _prctl()
"""Loaded in the parent, so the forked child only makes one foreign call (no dlopen after fork)."""


def die_with_parent(sig: int = signal.SIGKILL) -> Optional[Callable[[], None]]:
    """A `preexec_fn` that makes the child get `sig` when this process dies; None where unsupported."""
    if _PRCTL is None:
        return None
    parent = os.getpid()
    prctl = _PRCTL

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(3)

    return preexec


def contained(cmd: Sequence[str]) -> list[str]:
    """`cmd` under the reaper (`reap`) where Linux gives the means, else as is."""
    if _PRCTL is None:
        return list(cmd)
    return [sys.executable, "-S", "-m", "bench.sweep.local.orphans", *cmd]


def popen_contained(cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen:
    """`subprocess.Popen` of `cmd` under the reaper, in a session of its own; stop it with `stop_tree`."""
    return subprocess.Popen(contained(cmd), start_new_session=True, preexec_fn=die_with_parent(signal.SIGTERM),
                            **kwargs)


def stop_tree(proc: subprocess.Popen) -> None:
    """Stop a `popen_contained` process and everything under it, and reap it."""
    if proc.poll() is None and _PRCTL is not None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=STOP_GRACE_S)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def watch_parent() -> None:
    """Inside a cell or worker: exit if its parent dies (killed, Ctrl-C'd), so no orphan keeps
    measuring where prctl is not available."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


def descendants(root: int) -> list[int]:
    """Live (not zombie) descendants of `root`, from /proc."""
    children: dict[int, list[tuple[int, bool]]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append((int(name), fields[0] != b"Z"))
    found, todo = [], [root]
    while todo:
        for pid, live in children.get(todo.pop(), ()):
            todo.append(pid)
            if live:
                found.append(pid)
    return found


def _reap_zombies() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_descendants() -> None:
    """SIGKILL every descendant of this process until none is left (or `STOP_GRACE_S` passed), reaping
    those that become this subreaper's children."""
    deadline = time.monotonic() + STOP_GRACE_S
    while True:
        live = descendants(os.getpid())
        for pid in live:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap_zombies()
        if not live or time.monotonic() > deadline:
            return
        time.sleep(0.01)


class _Stop(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_stop(signum: int, frame: Optional[FrameType]) -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise _Stop(signum)


def _leave_like(signum: int) -> None:
    """End this process by `signum`, so its parent sees the same status as the command's."""
    sys.stdout.flush()
    if signum != signal.SIGKILL:
        signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)


def _fork_with_pdeathsig(sig: int) -> int:
    """`os.fork()`; the child gets `sig` when this process dies (and exits at once if it already did).
    Called with `STOP_SIGNALS` blocked; the child keeps them blocked and this process's handlers."""
    parent = os.getpid()
    child = os.fork()
    if child == 0:
        _PRCTL(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(3)
    return child


def _mirror(status: int) -> int:
    """This process's exit for a child's wait status: the same code, or death by the same signal."""
    if os.WIFSIGNALED(status):
        _leave_like(os.WTERMSIG(status))
    return os.waitstatus_to_exitcode(status)


def reap(cmd: Sequence[str]) -> int:
    """Run `cmd` under a guard process; see the module docstring.

    Two processes: this one, the anchor, is the caller's child and only waits; its child, the guard, is
    the subreaper that runs `cmd` and kills what it started. Ray SIGKILLs the direct children of a Ray
    worker that exits; the guard is a grandchild, so it outlives the anchor long enough to clean up
    (its PDEATHSIG is SIGTERM). A stop signal to the anchor is passed on to the guard."""
    if _PRCTL is None:
        raise OSError("the reaper needs Linux's prctl")
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_stop)
    guard = _fork_with_pdeathsig(signal.SIGTERM)
    if guard == 0:
        try:
            os._exit(_guard(cmd))
        finally:
            os._exit(127)
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        _, status = os.waitpid(guard, 0)
    except _Stop as stop:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):  # the guard may have just ended
            os.kill(guard, signal.SIGTERM)
            os.waitpid(guard, 0)
        _leave_like(stop.signum)
    return _mirror(status)


def _guard(cmd: Sequence[str]) -> int:
    """The subreaper: run `cmd` (SIGKILLed if this process dies), reap orphans until it ends, then SIGKILL
    every descendant; on a stop signal, SIGKILL them at once."""
    _PRCTL(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    child = _fork_with_pdeathsig(signal.SIGKILL)
    if child == 0:
        try:
            for sig in STOP_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            os.execvp(cmd[0], list(cmd))
        finally:
            os._exit(127)
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        while True:
            pid, status = os.wait()
            if pid == child:
                break
    except _Stop as stop:
        kill_descendants()
        _leave_like(stop.signum)
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    kill_descendants()
    return _mirror(status)


if __name__ == "__main__":
    raise SystemExit(reap(sys.argv[1:]))
