"""Checks as subprocesses within one time budget.

Each step comes with its estimate and its own timeout (`bench.gpucheck.plan`: twice the expected time,
at least a minute beyond it). A step starts only if what is left of the budget covers its expected time
(a resumable step, a preset, its first unit: `least_s`), under a timeout of min(its own, what is left);
otherwise it is skipped and the summary says how much it needed. At its timeout a step's process group
gets SIGTERM (a `bench run` then ends the unit in flight and keeps every finished cell for a resume), and
SIGKILL `GRACE_S` later. Output goes to `logs/<name>.log`.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from bench.gpucheck.plan import GRACE_S, RESERVE_S, DeviceProfile, Estimate, Planned

VERDICTS = ("PASS", "WARN", "FAIL", "SKIP")
INFO = "INFO: "
"""Prefix of a verdict line that reports an expected condition with its reason; it never raises a verdict."""


@dataclasses.dataclass(frozen=True)
class Finished:
    """What a step's subprocess did."""

    returncode: Optional[int]  # None when it was stopped at its timeout
    stdout: str
    stderr: str
    seconds: float
    timeout_s: float
    work_dir: Path

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


@dataclasses.dataclass(frozen=True)
class Verdict:
    verdict: str
    lines: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict '{self.verdict}' is unknown; known: {', '.join(VERDICTS)}")


Evaluate = Callable[[Finished], Verdict]


@dataclasses.dataclass(frozen=True)
class Step:
    """`estimate`: the step's seconds on a device profile (`bench.gpucheck.plan`). `resumable`: a sweep
    whose finished cells stay when it is cut (a preset); it may start with only part of its time left, and
    its evaluation reads what it finished."""

    name: str
    title: str
    argv: Callable[[Path], list[str]]  # work dir -> command line
    evaluate: Evaluate
    estimate: Callable[[DeviceProfile], Estimate]
    resumable: bool = False


@dataclasses.dataclass(frozen=True)
class StepResult:
    name: str
    title: str
    verdict: Verdict
    seconds: float
    command: str
    estimate_s: Optional[float] = None


def timeout_verdict(done: Finished, own_timeout_s: float) -> Optional[Verdict]:
    """The common failures, before a step's own evaluation: stopped at the timeout, or a non-zero exit.

    Stopped at its own timeout is a FAIL (twice its estimate and a minute more: it hung or is far slower
    than it should be); stopped because the budget ran out first is a WARN (the check did not finish,
    which says nothing about the GPU)."""
    if done.timed_out and done.timeout_s < own_timeout_s:
        return Verdict("WARN", (f"cut at {done.timeout_s:.0f} s when the budget ran out (its own timeout is "
                                f"{own_timeout_s:.0f} s); raise --budget-s to finish it",))
    if done.timed_out:
        return Verdict("FAIL", (f"killed at its timeout of {done.timeout_s:.0f} s (twice its estimate, and at "
                                f"least a minute more)",))
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return Verdict("FAIL", (f"exit code {done.returncode}", *tail))
    return None


# The checkout that holds this `bench`: steps run there, with it first on the path, from any cwd.
REPO = Path(__file__).resolve().parents[2]


def _stop(proc: subprocess.Popen) -> tuple[str, str]:
    """SIGTERM the step's process group, SIGKILL it GRACE_S later; the output so far."""
    for sig, wait_s in ((signal.SIGTERM, GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            return proc.communicate(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
    return "", ""


def _run(argv: list[str], timeout_s: float, work_dir: Path, log: Path) -> Finished:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=path)
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
        code: Optional[int] = proc.returncode
    except subprocess.TimeoutExpired:
        out, err = _stop(proc)
        code = None
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    seconds = time.monotonic() - start
    log.write_text(f"$ {' '.join(argv)}\n# exit {code} after {seconds:.1f} s\n--- stdout\n{out}\n--- stderr\n{err}")
    return Finished(code, out or "", err or "", seconds, timeout_s, work_dir)


def run_steps(plan: Sequence[Planned], out: Path, budget_s: float, print_fn: Callable[[str], None] = print,
              after_each: Optional[Callable[[list[StepResult]], None]] = None) -> list[StepResult]:
    """Run the plan's steps (`bench.gpucheck.plan.Planned`) in order within `budget_s` seconds of wall time
    (less `plan.RESERVE_S` for the summary); each gets its own folder under `out`. `after_each(results)` is
    called after every step (the summary and archive are rewritten there, so a killed run keeps them)."""
    deadline = time.monotonic() + budget_s - RESERVE_S
    (out / "logs").mkdir(parents=True, exist_ok=True)
    results: list[StepResult] = []
    for planned in plan:
        step, estimate = planned.step, planned.estimate
        left = deadline - time.monotonic()
        argv = step.argv(out / step.name)
        command = " ".join(argv)
        needed = estimate.least_s if step.resumable else estimate.expected_s
        if left - GRACE_S < needed:
            verdict = Verdict("SKIP", (f"needs about {needed:.0f} s (its estimate); {max(left, 0):.0f} s of the "
                                       f"{budget_s:.0f} s budget left (raise --budget-s to run it)",))
            results.append(StepResult(step.name, step.title, verdict, 0.0, command, estimate.expected_s))
            print_fn(f"{step.name}: SKIP ({verdict.lines[0]})")
        else:
            (out / step.name).mkdir(parents=True, exist_ok=True)
            timeout = min(planned.timeout_s, left - GRACE_S)  # stopping it may take GRACE_S more
            print_fn(f"{step.name}: {step.title} (estimate {estimate.expected_s:.0f} s, timeout {timeout:.0f} s)")
            done = _run(argv, timeout, out / step.name, out / "logs" / f"{step.name}.log")
            try:
                common = None if step.resumable else timeout_verdict(done, planned.timeout_s)
                verdict = common or step.evaluate(done)
            except Exception as exc:  # an evaluation that cannot read the output is a failed check, said so
                verdict = Verdict("FAIL", (f"could not evaluate the output: {type(exc).__name__}: {exc}",))
            results.append(StepResult(step.name, step.title, verdict, done.seconds, command, estimate.expected_s))
            print_fn(f"{step.name}: {verdict.verdict} after {done.seconds:.0f} s")
        if after_each is not None:
            after_each(results)
    return results


def python(*args: str) -> list[str]:
    """`python -m ...` with this interpreter."""
    return [sys.executable, *args]
