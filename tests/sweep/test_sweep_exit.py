"""Exit codes that judge the whole run, signals, orphans and the run lock, on real CPU sweeps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench import cli
from bench.results import load
from bench.results.io import RunWriter
from bench.results.runlock import run_lock
from bench.sweep.plan.config import load_file
from bench.sweep.local.executor import Worker
from bench.sweep.protocol import CellOutcome
from bench.sweep.driver.runner import make_row, plan
from bench.sweep.driver.signals import Terminated
from bench.sweep.driver.verdict import RunVerdict
from tests.sweep.processes import (alive as _alive, assert_tree_gone, descendants, marked, spawner_model,
                                   wait_for)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ('[axes]\nmodel = ["repvgg_a0"]\nbatch_size = [1, 2]\nresolution = [32]\n'
          '[run]\ndevice = "cpu"\nnum_threads = 1\n'
          '[timing]\nmin_samples = 5\nmin_time_s = 0.05\ntimeout_s = 0.3\nwarmup_max_s = 0.2\n')


def _config_file(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "exit.toml"
    path.write_text(CONFIG + extra)
    return path


def _prefill(config_path: Path, out: Path, statuses: list[str]) -> Path:
    """A run folder in which every cell already has a row (status per cell, in plan order): a resumed
    `bench run` of the same config has nothing left to run and is judged on these rows alone."""
    sweep = plan(load_file(config_path), out=out, run_id="prefilled")
    writer = RunWriter(sweep.run_dir)
    assert len(statuses) == len(sweep.cells)
    for cell, status in zip(sweep.cells, statuses):
        writer.append(make_row(sweep, cell, CellOutcome(status=status, error="earlier attempt"), None, None), [])
    return sweep.run_dir


def _argv(config_path: Path, out: Path, *extra: str) -> list[str]:
    return ["--config", str(config_path), "--out", str(out), "--run-id", "prefilled", *extra]


def test_strict_judges_the_rows_of_a_resumed_run(tmp_path, capsys):
    config_path, out = _config_file(tmp_path), tmp_path / "results"
    _prefill(config_path, out, ["ok", "error", "ok", "mismatch"])
    assert cli.main(["run", *_argv(config_path, out, "--strict")]) == 1
    err = capsys.readouterr().err
    assert "--strict: 2 cell(s) of the run (resumed ones included)" in err and "error" in err
    assert cli.main(["run", *_argv(config_path, out)]) == 0, "without --strict failed rows do not fail the run"


def test_a_run_with_no_ok_cell_exits_non_zero(tmp_path, capsys):
    config_path, out = _config_file(tmp_path), tmp_path / "results"
    _prefill(config_path, out, ["error", "timeout", "skipped", "oom"])
    assert cli.main(["run", *_argv(config_path, out)]) == 1
    assert "nothing was measured: no cell of the run has status ok" in capsys.readouterr().err


def test_a_sweep_in_which_every_cell_fails_exits_non_zero(tmp_path, capsys):
    config_path = _config_file(tmp_path, '[[fault]]\nkind = "error"\n')
    text = config_path.read_text().replace("batch_size = [1, 2]", 'batch_size = [1]\nform = ["train"]')
    config_path.write_text(text)
    assert cli.main(["run", "--config", str(config_path), "--out", str(tmp_path / "results")]) == 1
    assert "nothing was measured" in capsys.readouterr().err
    run_dir = next((tmp_path / "results").glob("*/*"))
    row = load(run_dir).iloc[0]
    assert row["status"] == "error" and row["load_avg_1m"] >= 0, "the machine's load is in every run row"
    env = json.loads((run_dir / "env.json").read_text())
    assert env["preflight"] and {"name", "verdict", "detail"} == set(env["preflight"][0])


def test_a_second_sweep_on_a_locked_folder_refuses_naming_the_holder(tmp_path, capsys):
    config_path, out = _config_file(tmp_path), tmp_path / "results"
    run_dir = _prefill(config_path, out, ["ok", "ok", "ok", "ok"])
    with run_lock(run_dir):
        assert cli.main(["run", *_argv(config_path, out)]) == 2
    err = capsys.readouterr().err
    assert f"being swept by another process (pid {os.getpid()})" in err and "--run-id" in err
    assert cli.main(["run", *_argv(config_path, out)]) == 0, "the lock is released with its holder"


def _children(pid: int) -> list[int]:
    """Live (non-zombie) processes whose parent is `pid` and that run a cell."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z" and (b"bench.sweep.worker.probe" in cmdline or b"bench.sweep.worker.serve" in cmdline):
            out.append(int(entry.name))
    return out


class Sweep:
    """`bench run` in a subprocess, its output collected line by line as it comes."""

    def __init__(self, argv: list[str], tmp: Path) -> None:
        tmp.mkdir(exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp)}
        self.proc = subprocess.Popen([sys.executable, "-m", "bench", "run", *argv], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self._reader.start()

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for_line(self, start: str, timeout_s: float = 60.0) -> None:
        """Until a line of the output starts with `start` (the sweep is then at that point)."""
        wait_for(lambda: any(line.startswith(start) for line in self.lines) or self.proc.poll() is not None,
                 timeout_s, f"no line starting with {start!r}")
        assert self.proc.poll() is None, self.text

    def finish(self, timeout_s: float = 30.0) -> int:
        self.proc.wait(timeout=timeout_s)
        self._reader.join(timeout=5)
        return self.proc.returncode


def _start_sweep(config_path: Path, out: Path, tmp: Path) -> tuple[Sweep, int]:
    """`bench run` in a subprocess; returns it and its cell's pid as soon as the cell exists (it is then
    still importing torch)."""
    sweep = Sweep(["--config", str(config_path), "--out", str(out)], tmp)
    cells = wait_for(lambda: _children(sweep.proc.pid) or sweep.proc.poll() is not None, 60,
                     "no cell process started")
    assert sweep.proc.poll() is None, sweep.text
    return sweep, cells[0]


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkilled_sweep_leaves_no_cell_running(tmp_path):
    """The cell hangs (fault 'hang'); the sweep is SIGKILLed while the cell still imports torch."""
    config_path = _config_file(tmp_path, '[[fault]]\nkind = "hang"\n')
    sweep, cell = _start_sweep(config_path, tmp_path / "results", tmp_path / "tmp")
    try:
        sweep.proc.kill()
        sweep.finish()
        assert _gone_within(cell, 5.0), "the cell outlived the killed sweep"
    finally:
        if _alive(cell):
            os.kill(cell, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_stops_the_sweep_like_ctrl_c(tmp_path):
    config_path = _config_file(tmp_path, '[[fault]]\nkind = "hang"\n')
    sweep, cell = _start_sweep(config_path, tmp_path / "results", tmp_path / "tmp")
    try:
        sweep.wait_for_line("[1/")  # the hanging unit is in flight
        sweep.proc.send_signal(signal.SIGTERM)
        assert sweep.finish() == 143, sweep.text
        assert "terminated (SIGTERM) while sweeping: finished cells are in" in sweep.text
        assert "run the same command again to resume" in sweep.text
        assert _gone_within(cell, 5.0)
        assert not list((tmp_path / "tmp").glob("bench-*")), "a temporary cell or worker folder was left behind"
    finally:
        if _alive(cell):
            os.kill(cell, signal.SIGKILL)


def test_tables_that_cannot_be_rebuilt_are_never_overwritten(tmp_path, capsys):
    config_path, out = _config_file(tmp_path), tmp_path / "results"
    run_dir = _prefill(config_path, out, ["ok", "ok", "ok", "ok"])
    (run_dir / "summary.parquet").unlink()
    for cell in (run_dir / "cells").glob("*"):
        cell.unlink()
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file() and p.name[0] != "."}
    assert cli.main(["run", *_argv(config_path, out)]) == 2
    err = capsys.readouterr().err
    assert "cannot be rebuilt" in err and "--run-id NAME" in err
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file() and p.name[0] != "."} == before


@pytest.mark.parametrize("damage", ["cell", "parquet"])
def test_a_damaged_run_folder_is_a_message_not_a_traceback(tmp_path, capsys, damage):
    config_path, out = _config_file(tmp_path), tmp_path / "results"
    run_dir = _prefill(config_path, out, ["ok", "ok", "ok", "ok"])
    if damage == "cell":
        cell = next((run_dir / "cells").glob("*.json"))
        cell.write_bytes(cell.read_bytes()[:20])
    else:
        for cell in (run_dir / "cells").glob("*"):
            cell.unlink()
        (run_dir / "summary.parquet").write_bytes(b"PAR1 truncated")
    assert cli.main(["run", *_argv(config_path, out)]) == 2
    err = capsys.readouterr().err
    assert ("truncated or not a cell file" if damage == "cell" else "cannot be read as Parquet") in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_results_folder_is_a_message(tmp_path, capsys):
    config_path, out = _config_file(tmp_path), tmp_path / "results"
    run_dir = _prefill(config_path, out, ["ok", "ok", "ok", "ok"])
    for path in (run_dir / "cells", run_dir):
        path.chmod(0o555)
    try:
        assert cli.main(["run", *_argv(config_path, out)]) == 2
        assert "cannot write the run folder" in capsys.readouterr().err
    finally:
        for path in (run_dir, run_dir / "cells"):
            path.chmod(0o755)


def test_a_corrupt_env_json_is_detected_when_resuming(tmp_path, capsys):
    config_path, out = _config_file(tmp_path), tmp_path / "results"
    run_dir = _prefill(config_path, out, ["ok", "ok", "ok", "ok"])
    (run_dir / "env.json").write_text("")
    assert cli.main(["run", *_argv(config_path, out)]) == 2
    assert "env.json: not valid JSON" in capsys.readouterr().err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkilled_sweep_leaves_no_process_a_model_started(tmp_path):
    spec, mark = spawner_model(tmp_path)
    config_path = _config_file(tmp_path)
    config_path.write_text(config_path.read_text().replace('model = ["repvgg_a0"]', f"model = [{spec!r}]")
                           .replace("batch_size = [1, 2]", "batch_size = [1]"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    sweep = subprocess.Popen([sys.executable, "-m", "bench", "run", "--config", str(config_path), "--out",
                              str(tmp_path / "results")], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    tree: set[int] = set()
    try:
        wait_for(lambda: len(marked(mark)) == 3 or sweep.poll() is not None, 120,
                 "no model started its helpers")
        tree = descendants(sweep.pid)
        assert sweep.poll() is None and tree, "the sweep ended before it was killed"
    finally:
        sweep.kill()
        sweep.wait()
        assert_tree_gone(tree, mark, 10.0)


def _signal_self_after(monkeypatch, owner, name: str, signum: int) -> None:
    """`owner.name` sends `signum` to this process once it has run: a real signal at a known step."""
    original = getattr(owner, name)

    def then_signal(*args, **kwargs):
        result = original(*args, **kwargs)
        os.kill(os.getpid(), signum)
        return result

    monkeypatch.setattr(owner, name, then_signal)


def _main_or_fail(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except (KeyboardInterrupt, Terminated) as exc:
        pytest.fail(f"{type(exc).__name__} escaped `bench {' '.join(argv[:1])}` (a traceback for the user)")


STEPS = {
    "start-up": ((cli, "_load"), "before the sweep started: nothing was measured"),
    "worker importing torch": ((Worker, "prestart"), "before the sweep started: nothing was measured"),
    "verdict": ((RunVerdict, "lines"), "after every unit was measured: all rows are in {run_dir}; run the "
                                       "same command again to judge the run (nothing is measured again)"),
}


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_at_any_step_says_what_it_left_and_exits_130_or_143(tmp_path, capsys, monkeypatch, step,
                                                                      signum):
    if step == "start-up" and signum == signal.SIGTERM:
        pytest.skip("before `bench run` installs its handler, SIGTERM ends the process at once (143 in a shell)")
    config_path, out = _config_file(tmp_path), tmp_path / "results"
    run_dir = _prefill(config_path, out, ["ok", "ok", "ok", "ok"])
    workers: list[Worker] = []
    if step == "worker importing torch":
        prestart = Worker.prestart
        monkeypatch.setattr(Worker, "prestart",
                            classmethod(lambda cls, *a: workers.append(prestart(*a)) or workers[-1]))
    (owner, name), says = STEPS[step]
    _signal_self_after(monkeypatch, owner, name, signum)
    try:
        code = _main_or_fail(["run", *_argv(config_path, out)])
    finally:
        for worker in workers:  # a signal right as it started may beat its cleanup; it dies with the process
            worker.kill()
    err = capsys.readouterr().err
    assert code == (130 if signum == signal.SIGINT else 143), err
    assert "Traceback" not in err
    if step != "start-up":
        why = "interrupted (Ctrl-C)" if signum == signal.SIGINT else "terminated (SIGTERM)"
        assert f"{why} {says.format(run_dir=run_dir)}" in err, err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_while_the_sweep_starts_is_a_message_not_a_traceback(tmp_path):
    """Ctrl-C (SIGINT to the foreground process) while the prestarted worker and the sweep import torch."""
    sweep, cell = _start_sweep(_config_file(tmp_path), tmp_path / "results", tmp_path / "tmp")
    try:
        sweep.proc.send_signal(signal.SIGINT)
        assert sweep.finish() == 130, sweep.text
        assert "interrupted (Ctrl-C)" in sweep.text and "Traceback" not in sweep.text, sweep.text
        assert _gone_within(cell, 5.0)
    finally:
        if _alive(cell):
            os.kill(cell, signal.SIGKILL)


UNDER_LIMIT = '''
import resource
import sys

from bench import cli
from bench.sweep.driver import runner

sweep = runner.run_sweep


def run_sweep_then_limit(*args, **kwargs):
    """Once the rows are written, allow this process 16 MiB of address space more than it holds: a memory
    limit (ulimit -v) that the sweep just fit."""
    summary = sweep(*args, **kwargs)
    with open("/proc/self/status") as status:
        held = next(int(line.split()[1]) for line in status if line.startswith("VmSize:")) << 10
    resource.setrlimit(resource.RLIMIT_AS, (held + (16 << 20), resource.RLIM_INFINITY))
    return summary


runner.run_sweep = run_sweep_then_limit
sys.exit(cli.main(sys.argv[1:]))
'''


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_verdict_needs_no_memory_beyond_what_the_sweep_held(tmp_path):
    """The verdict used to read the tables back (Parquet: new libraries, new threads) and, under a limit
    the sweep fit, abort in glibc (exit 127) or the C++ runtime (134) after the rows were written."""
    script = tmp_path / "under_limit.py"
    script.write_text(UNDER_LIMIT)
    config_path = _config_file(tmp_path)
    config_path.write_text(config_path.read_text().replace("batch_size = [1, 2]", "batch_size = [1]"))
    done = subprocess.run([sys.executable, str(script), "run", "--config", str(config_path), "--out",
                           str(tmp_path / "results")], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = next((tmp_path / "results").glob("*/*"))
    assert f"results: {run_dir}" in done.stdout and set(load(run_dir)["status"]) == {"ok"}
