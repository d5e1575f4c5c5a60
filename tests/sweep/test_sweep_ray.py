"""Sweeps on a real local Ray cluster (`ray.cluster_utils.Cluster`): nodes labelled with two or more
hardware kinds, a tiny CPU sweep on each, nodes killed mid-sweep, resume, a node with other software.

One cluster serves the module (Ray takes seconds to start). Units are RepVGG-A0 pairs at 32x32 with short
timing windows, run for real in worker processes on the nodes. Skipped without the ray extra.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from bench import cli  # noqa: E402
from bench.results import load  # noqa: E402
from bench.sweep.plan.config import from_dict, load_file  # noqa: E402
from bench.sweep.ray.cluster import connect, kinds, select, stay_on_loopback  # noqa: E402
from bench.sweep.ray.executor import RayExecutor  # noqa: E402
from bench.sweep.ray.node import Expected  # noqa: E402
from bench.sweep.ray.sweep import plan_kinds, run_kinds  # noqa: E402
from bench.sweep.driver.runner import run_sweep  # noqa: E402
from tests.sweep.processes import assert_tree_gone, descendants, marked, spawner_model, wait_for  # noqa: E402

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[2]
FAST_TIMING = {"min_samples": 5, "min_time_s": 0.05, "timeout_s": 0.3, "warmup_max_s": 0.2}
FAST_HEALTH = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 300,
               "health_check_failure_threshold": 2}
"""A killed node is declared dead within about a second (Ray's default is tens of seconds)."""
LOOPBACK = "127.0.0.1"
UNREACHABLE = f"http://{LOOPBACK}:9"
LOOPBACK_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # Ray keeps 127.0.0.1 (`stay_on_loopback`)
    "RAY_USAGE_STATS_ENABLED": "0", "RAY_USAGE_STATS_REPORT_URL": UNREACHABLE + "/",
    # Ray's API server asks cloud metadata addresses (169.254.169.254) what it runs on, usage stats or
    # not: its HTTP goes to a closed loopback port instead
    **{name: UNREACHABLE for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")},
    **{name: f"{LOOPBACK},localhost" for name in ("no_proxy", "NO_PROXY")},
}
"""The environment of the cluster's processes and of every driver here: nothing is sent to an address
other than 127.0.0.1."""


@pytest.fixture(scope="module")
def cluster():
    with pytest.MonkeyPatch.context() as patch:
        for name, value in LOOPBACK_ENV.items():
            patch.setenv(name, value)
        stay_on_loopback(ray)
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "node_ip_address": LOOPBACK,
                                                          "_system_config": FAST_HEALTH})
        _add_node(c, "kind-a")
        _add_node(c, "kind-b")
        c.wait_for_nodes()
        connect(c.address)
        yield c
        ray.shutdown()
        c.shutdown()


def _add_node(cluster, hardware: str):
    return cluster.add_node(num_cpus=1, resources={f"hw:{hardware}": 1}, node_ip_address=LOOPBACK)


def test_every_node_and_the_driver_are_on_loopback(cluster):
    assert cluster.address.startswith(LOOPBACK + ":")
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {LOOPBACK}
    assert ray.util.get_node_ip_address() == LOOPBACK


def _config(name: str, batches: list[int]):
    return from_dict({"name": name, "axes": {"model": ["repvgg_a0"], "resolution": [32], "batch_size": batches},
                      "run": {"device": "cpu", "cell_timeout_s": 60, "num_threads": 1}, "timing": FAST_TIMING})


def _runs(config, hardware: list[str], out: Path):
    return plan_kinds(config, select(kinds(ray.nodes()), hardware), out=out)


def _written(run_dir: Path) -> dict[str, int]:
    """Each cell file's write stamp: a finished row that is rewritten gets a new one."""
    return {p.name: json.loads(p.read_text())["written_ns"] for p in (run_dir / "cells").glob("*.json")}


def _wait_for_pairs(run_dir: Path, n: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(list((run_dir / "pairs").glob("*.json"))) < n:
        assert time.monotonic() < deadline, f"no {n} pair(s) in {run_dir} after {timeout_s} s"
        time.sleep(0.1)


def _wait_until_busy(node_id: str, timeout_s: float = 60.0) -> None:
    """Until the node's one CPU is claimed by a unit (Ray leaves resources with none free out)."""
    from ray._private.state import available_resources_per_node

    deadline = time.monotonic() + timeout_s
    while available_resources_per_node()[node_id].get("CPU", 0) > 0:
        assert time.monotonic() < deadline, f"node {node_id} ran no unit in {timeout_s} s"
        time.sleep(0.05)


def _in_thread(runs):
    thread = threading.Thread(target=run_kinds, args=(runs,), daemon=True)
    thread.start()
    return thread


def test_sweep_lands_per_hardware_and_compares_side_by_side(cluster, tmp_path, capsys):
    runs = run_kinds(_runs(_config("two-kinds", [1]), ["kind-a", "kind-b"], tmp_path))
    assert [r.error for r in runs] == [None, None]
    dirs = [r.plan.run_dir for r in runs]
    assert [d.parent.name for d in dirs] == ["kind-a", "kind-b"]
    for run_dir in dirs:
        df = load(run_dir)
        assert sorted(df["form"]) == ["deploy", "train"] and set(df["status"]) == {"ok"}
        assert df["load_avg_1m"].notna().all() and df["speedup_median"].notna().all()
        env = json.loads((run_dir / "env.json").read_text())
        assert env["ray_node"] and env["torch_version"]
    assert cli.main(["compare", str(dirs[0]), str(dirs[1]), "--across-hardware"]) == 0
    out = capsys.readouterr().out
    assert "kind-b / kind-a" in out and "repvgg_a0" in out

    before = [_written(d) for d in dirs]  # the same sweep again resumes: nothing is measured anew
    again = run_kinds(_runs(_config("two-kinds", [1]), ["kind-a", "kind-b"], tmp_path))
    assert [r.summary.resumed for r in again] == [2, 2]
    assert [_written(d) for d in dirs] == before


def test_last_node_of_a_kind_killed_mid_sweep_keeps_finished_rows_and_rerun_completes(cluster, tmp_path):
    node = _add_node(cluster, "kind-c")
    cluster.wait_for_nodes()
    runs = _runs(_config("kill-last", [1, 2, 3]), ["kind-c"], tmp_path)
    thread = _in_thread(runs)
    run_dir = runs[0].plan.run_dir
    _wait_for_pairs(run_dir, 1)
    cluster.remove_node(node, allow_graceful=False)
    thread.join(timeout=60)
    assert not thread.is_alive() and runs[0].error is None
    finished = _written(run_dir)
    assert len(runs[0].executor.not_run) >= 1, "units still in flight or queued get no row"
    assert len(finished) == 2 * (3 - len(runs[0].executor.not_run))
    assert set(load(run_dir)["status"]) == {"ok"}

    _add_node(cluster, "kind-c")
    cluster.wait_for_nodes()
    rerun = run_kinds(_runs(_config("kill-last", [1, 2, 3]), ["kind-c"], tmp_path))
    assert rerun[0].summary.resumed == len(finished) and rerun[0].executor.not_run == []
    df = load(run_dir)
    assert len(df) == 6 and set(df["status"]) == {"ok"}
    assert {k: v for k, v in _written(run_dir).items() if k in finished} == finished


def test_node_killed_mid_unit_is_retried_once_on_another_node_of_its_kind(cluster, tmp_path):
    nodes = [_add_node(cluster, "kind-d") for _ in range(2)]
    cluster.wait_for_nodes()
    runs = _runs(_config("kill-one", [1, 2, 3, 4]), ["kind-d"], tmp_path)
    thread = _in_thread(runs)
    _wait_for_pairs(runs[0].plan.run_dir, 1)
    _wait_until_busy(nodes[0].node_id)
    cluster.remove_node(nodes[0], allow_graceful=False)  # a unit is in flight on it
    thread.join(timeout=90)
    assert not thread.is_alive() and runs[0].error is None and runs[0].executor.not_run == []
    df = load(runs[0].plan.run_dir)
    assert len(df) == 8 and set(df["status"]) == {"ok"}, df[["batch_size", "form", "status", "error"]]


def _node_workers() -> set[int]:
    """Pids of unit workers started by Ray tasks (their PYTHONPATH is the package Ray shipped)."""
    pids = set()
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes()
            env = (proc / "environ").read_bytes()
        except OSError:
            continue
        if b"bench.sweep.worker.serve" in cmd and b"py_modules_files" in env:
            pids.add(int(proc.name))
    return pids


def test_driver_killed_mid_sweep_leaves_no_worker_and_resumes(cluster, tmp_path):
    before = _node_workers()
    toml = _toml(tmp_path, [1, 2, 3])
    cmd = [sys.executable, "-m", "bench", "run", "--config", str(toml), "--executor", "ray", "--address",
           cluster.address, "--hardware", "kind-b", "--out", str(tmp_path)]
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    runs = _runs(load_file(toml), ["kind-b"], tmp_path)
    run_dir = runs[0].plan.run_dir
    try:
        _wait_for_pairs(run_dir, 1)
        assert _node_workers() - before, "the driver's units run in workers on the node"
    finally:
        driver.kill()
        driver.wait()
    finished = _written(run_dir)
    deadline = time.monotonic() + 20
    while _node_workers() - before:
        assert time.monotonic() < deadline, "a unit worker outlived its driver"
        time.sleep(0.2)
    rerun = run_kinds(runs)
    assert rerun[0].error is None and rerun[0].summary.resumed == len(finished) >= 2
    assert len(load(run_dir)) == 6
    assert {k: v for k, v in _written(run_dir).items() if k in finished} == finished


def _driver(tmp_path: Path, toml: Path, address: str, hardware: str) -> subprocess.Popen:
    """`bench run --executor ray` in a subprocess, on loopback like the cluster."""
    cmd = [sys.executable, "-m", "bench", "run", "--config", str(toml), "--executor", "ray", "--address",
           address, "--hardware", hardware, "--out", str(tmp_path)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **LOOPBACK_ENV, "PYTHONPATH": str(ROOT)})


def test_driver_stopped_by_sigterm_flushes_summary_and_speedups(cluster, tmp_path):
    """SIGTERM, the harder of the two stops: `ray.init` installs its own handler, which exits at once. Ctrl-C
    takes the same path from the exception on (`run_kinds`)."""
    signum = signal.SIGTERM
    toml = _toml(tmp_path, [1, 2, 3, 4])
    run_dir = _runs(load_file(toml), ["kind-a"], tmp_path)[0].plan.run_dir
    driver = _driver(tmp_path, toml, cluster.address, "kind-a")
    try:
        _wait_for_pairs(run_dir, 1)
    finally:
        driver.send_signal(signum)
        out, _ = driver.communicate(timeout=60)
    pairs, cells = (len(list((run_dir / folder).glob("*.json"))) for folder in ("pairs", "cells"))
    speedups, summary = (pd.read_parquet(run_dir / f"{name}.parquet") for name in ("speedups", "summary"))
    assert len(speedups) == pairs >= 1 and len(summary) == cells == 2 * pairs, "the tables miss finished pairs"
    assert driver.returncode == 128 + signum, out
    assert "while sweeping: finished cells are in" in out and "Traceback" not in out, out


def test_driver_killed_leaves_no_process_a_model_started(cluster, tmp_path):
    spec, mark = spawner_model(tmp_path)
    toml = _toml(tmp_path)
    toml.write_text(toml.read_text().replace('model = ["repvgg_a0"]', f"model = [{spec!r}]"))
    before = _node_workers()
    driver = _driver(tmp_path, toml, cluster.address, "kind-b")
    tree: set[int] = set()
    try:
        wait_for(lambda: len(marked(mark)) == 3 or driver.poll() is not None, 120, "no model started its helpers")
        assert driver.poll() is None, driver.communicate()[0]
        tree = {pid for worker in _node_workers() - before for pid in {worker} | descendants(worker)}
        assert tree, "the driver's unit runs in a worker on the node"
    finally:
        driver.kill()
        driver.communicate()
        assert_tree_gone(tree, mark, 30.0)


def test_no_cluster_at_the_address_fails_fast_naming_it(tmp_path):
    started = time.monotonic()
    driver = _driver(tmp_path, _toml(tmp_path), f"{LOOPBACK}:1", "kind-a")
    out, _ = driver.communicate(timeout=120)
    assert driver.returncode == 2 and f"no Ray cluster at '{LOOPBACK}:1'" in out, out
    assert time.monotonic() - started < 60


def test_node_with_other_software_yields_error_rows_not_a_crash(cluster, tmp_path):
    run = _runs(_config("other-torch", [1]), ["kind-a"], tmp_path)[0]
    other = Expected(torch_version="0.0.1-other", python_version=Expected.here().python_version)
    summary = run_sweep(run.plan, RayExecutor(run.kind, "cpu", 60, expected=other))
    df = load(summary.run_dir)
    assert set(df["status"]) == {"error"} and len(df) == 2
    assert df["error"].str.contains("torch .* here, 0.0.1-other on the driver").all()


def test_cli_names_the_kinds_of_the_cluster_when_one_is_unknown(cluster, tmp_path, capsys):
    code = cli.main(["run", "--config", str(_toml(tmp_path)), "--executor", "ray", "--address",
                     cluster.address, "--hardware", "kind-a,kind-zz", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "'kind-zz' is not in the Ray cluster" in err and "kind-a, kind-b" in err


def _toml(tmp_path: Path, batches: tuple[int, ...] | list[int] = (1,)) -> Path:
    """The tiny sweep as a file for `bench run --config` (same axes and timing as `_config`)."""
    path = tmp_path / "tiny.toml"
    timing = "".join(f"{k} = {v}\n" for k, v in FAST_TIMING.items())
    path.write_text(f'name = "tiny"\n[axes]\nmodel = ["repvgg_a0"]\nresolution = [32]\nbatch_size = {list(batches)}\n'
                    f'[run]\ndevice = "cpu"\ncell_timeout_s = 60\nnum_threads = 1\n[timing]\n{timing}')
    return path
