"""Checks as subprocesses within one time budget.

A step runs only if at least its `min_s` is left of the budget, under a timeout of min(timeout_s, left);
otherwise it is skipped and the summary says how much it needed. Output goes to `logs/<name>.log`.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

VERDICTS = ("PASS", "WARN", "FAIL", "SKIP")


@dataclasses.dataclass(frozen=True)
class Finished:
    """What a step's subprocess did."""

    returncode: Optional[int]  # None when it was killed at its timeout
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
    name: str
    title: str
    argv: Callable[[Path], list[str]]  # work dir -> command line
    timeout_s: float
    min_s: float
    evaluate: Evaluate


@dataclasses.dataclass(frozen=True)
class StepResult:
    name: str
    title: str
    verdict: Verdict
    seconds: float
    command: str


def timeout_verdict(done: Finished, own_timeout_s: float) -> Optional[Verdict]:
    """The common failures, before a step's own evaluation: killed at the timeout, or a non-zero exit.

    Killed at its own timeout is a FAIL (it hung or is far slower than it should be); killed because the
    budget ran out first is a WARN (the check did not finish, which says nothing about the GPU)."""
    if done.timed_out and done.timeout_s < own_timeout_s:
        return Verdict("WARN", (f"cut at {done.timeout_s:.0f} s when the budget ran out (its own timeout is "
                                f"{own_timeout_s:.0f} s); raise --budget-s to finish it",))
    if done.timed_out:
        return Verdict("FAIL", (f"killed at its timeout of {done.timeout_s:.0f} s",))
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return Verdict("FAIL", (f"exit code {done.returncode}", *tail))
    return None


# The checkout that holds this `bench`: steps run there, with it first on the path, from any cwd.
REPO = Path(__file__).resolve().parents[2]


def _run(argv: list[str], timeout_s: float, work_dir: Path, log: Path) -> Finished:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=path)
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, env=env, cwd=REPO)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        code = None
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
    seconds = time.monotonic() - start
    log.write_text(f"$ {' '.join(argv)}\n# exit {code} after {seconds:.1f} s\n--- stdout\n{out}\n--- stderr\n{err}")
    return Finished(code, out, err, seconds, timeout_s, work_dir)


def run_steps(steps: list[Step], out: Path, budget_s: float,
              print_fn: Callable[[str], None] = print) -> list[StepResult]:
    """Run `steps` in order within `budget_s` seconds of wall time; each gets its own folder under `out`."""
    deadline = time.monotonic() + budget_s
    (out / "logs").mkdir(parents=True, exist_ok=True)
    results = []
    for step in steps:
        left = deadline - time.monotonic()
        argv = step.argv(out / step.name)
        command = " ".join(argv)
        if left < step.min_s:
            verdict = Verdict("SKIP", (f"needs at least {step.min_s:.0f} s; {max(left, 0):.0f} s of the "
                                       f"{budget_s:.0f} s budget left (raise --budget-s to run it)",))
            results.append(StepResult(step.name, step.title, verdict, 0.0, command))
            print_fn(f"{step.name}: SKIP ({verdict.lines[0]})")
            continue
        (out / step.name).mkdir(parents=True, exist_ok=True)
        print_fn(f"{step.name}: {step.title} (timeout {min(step.timeout_s, left):.0f} s)")
        done = _run(argv, min(step.timeout_s, left), out / step.name, out / "logs" / f"{step.name}.log")
        try:
            verdict = timeout_verdict(done, step.timeout_s) or step.evaluate(done)
        except Exception as exc:  # an evaluation that cannot read the output is a failed check, said so
            verdict = Verdict("FAIL", (f"could not evaluate the output: {type(exc).__name__}: {exc}",))
        results.append(StepResult(step.name, step.title, verdict, done.seconds, command))
        print_fn(f"{step.name}: {verdict.verdict} after {done.seconds:.0f} s")
    return results


def python(*args: str) -> list[str]:
    """`python -m ...` with this interpreter."""
    return [sys.executable, *args]
