"""Sweeps on a real local Ray cluster (`ray.cluster_utils.Cluster`): nodes labelled with two or more
hardware kinds, a tiny CPU sweep on each, nodes killed mid-sweep, resume, a node with other software.

One cluster serves the module (Ray takes seconds to start). Units are RepVGG-A0 pairs at 32x32 with short
timing windows, run for real in worker processes on the nodes. Skipped without the ray extra.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from bench import cli  # noqa: E402
from bench.results import load  # noqa: E402
from bench.sweep.config import from_dict, load_file  # noqa: E402
from bench.sweep.ray_cluster import connect, kinds, select  # noqa: E402
from bench.sweep.ray_executor import RayExecutor  # noqa: E402
from bench.sweep.ray_node import Expected  # noqa: E402
from bench.sweep.ray_sweep import plan_kinds, run_kinds  # noqa: E402
from bench.sweep.runner import run_sweep  # noqa: E402

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[2]
FAST_TIMING = {"min_samples": 5, "min_time_s": 0.05, "timeout_s": 0.3, "warmup_max_s": 0.2}
FAST_HEALTH = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 300,
               "health_check_failure_threshold": 2}
"""A killed node is declared dead within about a second (Ray's default is tens of seconds)."""


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "_system_config": FAST_HEALTH})
    c.add_node(num_cpus=1, resources={"hw:kind-a": 1})
    c.add_node(num_cpus=1, resources={"hw:kind-b": 1})
    c.wait_for_nodes()
    connect(c.address)
    yield c
    ray.shutdown()
    c.shutdown()


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
    node = cluster.add_node(num_cpus=1, resources={"hw:kind-c": 1})
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

    cluster.add_node(num_cpus=1, resources={"hw:kind-c": 1})
    cluster.wait_for_nodes()
    rerun = run_kinds(_runs(_config("kill-last", [1, 2, 3]), ["kind-c"], tmp_path))
    assert rerun[0].summary.resumed == len(finished) and rerun[0].executor.not_run == []
    df = load(run_dir)
    assert len(df) == 6 and set(df["status"]) == {"ok"}
    assert {k: v for k, v in _written(run_dir).items() if k in finished} == finished


def test_node_killed_mid_unit_is_retried_once_on_another_node_of_its_kind(cluster, tmp_path):
    nodes = [cluster.add_node(num_cpus=1, resources={"hw:kind-d": 1}) for _ in range(2)]
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
        if b"bench.sweep.worker" in cmd and b"py_modules_files" in env:
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
