"""`bench run --executor ray`: one sweep on several hardware kinds of a Ray cluster at once.

Per kind (`--hardware`, default every `hw:` label in the cluster) the sweep is planned as locally, with
the kind's id as its hardware: rows go to `<out>/<hardware>/<run_id>/` through the same
`bench.sweep.driver.runner.run_sweep`, whose executor is a `RayExecutor` for that kind; the kinds run side by
side, one driver thread each. `env.json` is a node of the kind's own fingerprint (with the driver's git
state: the driver's code is what runs). The run id is the local one (`<name>-<hash>`), so the same
command resumes every kind's folder, and `bench compare --across-hardware` reads them as any runs.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from bench.sweep.plan.axes import ConfigError
from bench.sweep.plan.config import SweepConfig, validate
from bench.sweep.local.executor import Executor
from bench.sweep.ray.cluster import HardwareKind, connect, import_ray, kinds, select
from bench.sweep.driver.runner import SweepPlan, SweepSummary, lay_out, run_sweep
from bench.sweep.driver.signals import Stage, Terminated, sigterm_raises, stopped_exit
from bench.usage import EXIT_USAGE, UsageError

if TYPE_CHECKING:
    from types import ModuleType


@dataclass
class KindRun:
    """One hardware kind's share of the sweep: its plan, executor and, once done, summary or error."""

    kind: HardwareKind
    plan: SweepPlan
    executor: Optional[Executor] = None
    summary: Optional[SweepSummary] = None
    error: Optional[BaseException] = None


def plan_kinds(config: SweepConfig, chosen: Sequence[HardwareKind], out: Path | str | None = None,
               run_id: Optional[str] = None) -> list[KindRun]:
    """Validate once, then lay out one run per kind as a local run is laid out (`runner.lay_out`);
    nothing is run or written."""
    validate(config)
    runs = []
    for kind in chosen:
        device = kind.device(config.device)
        kind.task_options(device)
        runs.append(KindRun(kind=kind, plan=lay_out(config, device, kind.hardware, out, run_id)))
    return runs


STOP_TIMEOUT_S = 30.0
"""How long a stopped driver waits for each kind's sweep to cancel its units and flush its tables."""
ENV_TIMEOUT_S = 300.0
"""How long a node of a kind may take to start a Ray worker and fingerprint itself."""


def node_env(ray: ModuleType, kind: HardwareKind) -> dict[str, Any]:
    """A node of the kind's fingerprint for `env.json`, with the driver's git state (its code runs)."""
    from bench.measure.env import git_state
    from bench.sweep.ray.node import node_environment

    ref = ray.remote(node_environment).options(num_cpus=0, resources={kind.resource: 0.001}).remote()
    try:
        env = ray.get(ref, timeout=ENV_TIMEOUT_S)
    except ray.exceptions.GetTimeoutError:
        ray.cancel(ref, force=True)
        raise RuntimeError(f"no node of hardware '{kind.hardware}' fingerprinted itself within "
                           f"{ENV_TIMEOUT_S:g} s; is one alive?") from None
    return {**env, **git_state()}


def worker_env(plan: SweepPlan) -> dict[str, str]:
    """torch.compile units get an inductor cache of their own run, as locally, in the cache directory of
    the node's user (`bench.measure.compile_cache`)."""
    from bench.measure.compile_cache import INDUCTOR_RUNTIMES, compile_cache_env

    if not set(INDUCTOR_RUNTIMES) & set(plan.config.values("runtime")):
        return {}
    return compile_cache_env(plan.run_dir)


def run_kinds(runs: Sequence[KindRun], retry_failed: bool = False, isolation: str = "model") -> list[KindRun]:
    """Run every kind's sweep at once (a thread each, writing only its own folder); returns the runs with
    their summaries. An error of one kind is kept on its run, so the others finish.

    Ctrl-C or SIGTERM (an exception in this, the main thread) stops every kind: their units in flight are
    cancelled and their finished rows flushed into the tables (within `STOP_TIMEOUT_S`); then it
    propagates."""
    from bench.results.runlock import run_lock
    from bench.sweep.ray.executor import RayExecutor

    ray = import_ray()
    stop = threading.Event()
    with ExitStack() as stack:
        for run in runs:
            stack.enter_context(run_lock(run.plan.run_dir))

        def work(run: KindRun, finished: threading.Event) -> None:
            try:
                run.executor = RayExecutor(run.kind, run.plan.device, run.plan.config.cell_timeout_s, isolation,
                                           env=worker_env(run.plan), stop=stop)
                run.summary = run_sweep(run.plan, run.executor, retry_failed=retry_failed,
                                        env=node_env(ray, run.kind))
            except Exception as exc:  # noqa: BLE001 - reported per kind by the caller
                run.error = exc
            finally:
                finished.set()

        # waited for through events, not Thread.join: on CPython 3.11 a join that Ctrl-C interrupts marks
        # the thread as ended, and the stop below would then not wait for its flush
        done = [threading.Event() for _ in runs]
        for run, finished in zip(runs, done):
            threading.Thread(target=work, args=(run, finished), daemon=True).start()
        try:
            for finished in done:
                while not finished.wait(timeout=0.5):
                    pass
        except BaseException:
            stop.set()
            deadline = time.monotonic() + STOP_TIMEOUT_S
            for finished in done:
                finished.wait(timeout=max(0.0, deadline - time.monotonic()))
            raise
    return list(runs)


def run_command(args: argparse.Namespace, build_config: Callable[[argparse.Namespace], SweepConfig]) -> int:
    """`bench run` with `--executor ray`: exit codes as for a local sweep, judged over every kind's run;
    Ctrl-C and SIGTERM as locally (`bench.sweep.driver.signals`), from joining the cluster to the verdict."""
    if args.executor != "ray":
        raise UsageError("--address and --hardware need --executor ray")
    stage = Stage()
    with sigterm_raises():
        try:
            return _run_command(args, build_config, stage)
        except (KeyboardInterrupt, Terminated) as exc:
            return stopped_exit(exc, stage)


def _run_command(args: argparse.Namespace, build_config: Callable[[argparse.Namespace], SweepConfig],
                 stage: Stage) -> int:
    import_ray()
    if args.max_batch:
        raise ConfigError("--max-batch runs on this machine only; drop --executor ray")
    config = build_config(args)
    ray = connect(args.address)
    wanted = [h.strip() for h in (args.hardware or "").split(",") if h.strip()]
    runs = plan_kinds(config, select(kinds(ray.nodes()), wanted), out=args.out, run_id=args.run_id)
    for run in runs:
        print(f"run {run.plan.run_id} on {run.plan.device} ({run.kind.hardware}, {run.kind.nodes} Ray "
              f"node(s)): {len(run.plan.cells)} cells -> {run.plan.run_dir}", flush=True)
    if args.dry_run:
        return 0
    stage.enter("sweeping", ", ".join(str(run.plan.run_dir) for run in runs))
    run_kinds(runs, retry_failed=args.retry_failed, isolation=args.isolation)
    stage.enter("judging")
    return _report(runs, args.strict)


def _report(runs: Sequence[KindRun], strict: bool) -> int:
    codes = []
    for run in runs:
        if run.error is not None:
            usage = isinstance(run.error, (UsageError, OSError))
            print(f"bench run: {run.kind.hardware}: {run.error}", file=sys.stderr)
            codes.append(EXIT_USAGE if usage else 1)
            continue
        left = len(run.executor.not_run) if run.executor is not None else 0
        if left:
            print(f"bench run: {run.kind.hardware}: no Ray node of this kind is left; {left} unit(s) not run: "
                  "run the same command again once its nodes are back", file=sys.stderr)
        print(f"results ({run.kind.hardware}): {run.plan.run_dir}")
        verdict = run.summary.verdict
        for line in verdict.lines(strict):
            print(f"bench run: {run.kind.hardware}: {line}", file=sys.stderr)
        codes.append(verdict.exit_code(strict) or (1 if left else 0))
    return max(codes, default=0)
