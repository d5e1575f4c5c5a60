"""`--executor ray` without a cluster: the missing extra is named at once, and hardware kinds are read
from the nodes' `hw:` resources with clear errors. Needs no Ray."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import cli
from bench.sweep.plan.axes import ConfigError
from bench.sweep.ray.cluster import HardwareKind, kinds, select

NODES = [
    {"Alive": True, "Resources": {"CPU": 4.0, "hw:intel-xeon-f6m167-4c": 1.0}},
    {"Alive": True, "Resources": {"CPU": 2.0, "hw:intel-xeon-f6m167-4c": 1.0}},
    {"Alive": True, "Resources": {"CPU": 16.0, "GPU": 8.0, "hw:nvidia-h200-141gb": 1.0}},
    {"Alive": False, "Resources": {"CPU": 8.0, "GPU": 1.0, "hw:nvidia-l4-22gb": 1.0}},
    {"Alive": True, "Resources": {"CPU": 0.0}},
]


def test_without_ray_the_executor_fails_at_once_naming_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    started = time.monotonic()
    assert cli.main(["run", "--preset", "smoke", "--executor", "ray"]) == 2
    assert time.monotonic() - started < 5
    assert 'pip install -e ".[ray]"' in capsys.readouterr().err


def test_ray_options_need_the_ray_executor(capsys):
    assert cli.main(["run", "--preset", "smoke", "--hardware", "nvidia-h200-141gb"]) == 2
    assert "need --executor ray" in capsys.readouterr().err


def test_kinds_come_from_alive_nodes_with_the_fewest_cpus_and_gpus():
    found = kinds(NODES)
    assert list(found) == ["intel-xeon-f6m167-4c", "nvidia-h200-141gb"]
    assert found["intel-xeon-f6m167-4c"] == HardwareKind("intel-xeon-f6m167-4c", nodes=2, cpus=2, gpus=0)
    assert found["nvidia-h200-141gb"].gpus == 8


def test_a_cpu_unit_claims_a_whole_node_and_a_cuda_unit_one_gpu():
    cpu, gpu = kinds(NODES).values()
    assert cpu.task_options("cpu") == {"num_cpus": 2, "num_gpus": 0, "resources": {"hw:intel-xeon-f6m167-4c": 0.001}}
    assert gpu.task_options(gpu.device("auto"))["num_gpus"] == 1
    assert cpu.device("auto") == "cpu"
    with pytest.raises(ConfigError, match="have no GPU in Ray"):
        cpu.device("cuda")


def test_unknown_or_missing_kinds_are_named_with_the_valid_choices():
    with pytest.raises(ConfigError, match=r"'nvidia-l4-22gb' is not in the Ray cluster; available: "
                                          r"intel-xeon-f6m167-4c, nvidia-h200-141gb"):
        select(kinds(NODES), ["nvidia-h200-141gb", "nvidia-l4-22gb"])
    with pytest.raises(ConfigError, match="no alive node .* carries a 'hw:<hardware id>' resource"):
        select(kinds(NODES[4:]), None)
    assert [k.hardware for k in select(kinds(NODES), None)] == ["intel-xeon-f6m167-4c", "nvidia-h200-141gb"]


def test_ray_tests_skip_cleanly_without_ray():
    root = Path(__file__).resolve().parents[2]
    hide = "import sys; sys.modules['ray'] = None; import pytest; sys.exit(pytest.main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", hide, "--collect-only", "-q", "-rs", "-p", "no:cacheprovider",
                           "tests/sweep/test_sweep_ray.py", "tests/sweep/test_sweep_ray_plan.py"],
                          cwd=root, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0 and "error" not in output.lower(), output
    assert "SKIPPED" in output and "could not import 'ray'" in output, output


def test_a_ray_kind_is_laid_out_as_a_local_run_with_its_own_hardware(tmp_path):
    """One plan builder: a kind's plan differs from the local one only in its device and hardware (the
    models' provenance, the run id and the cells are the local plan's)."""
    from bench.sweep.plan.config import load_preset
    from bench.sweep.ray.sweep import plan_kinds
    from bench.sweep.driver.runner import plan

    config = load_preset("smoke")
    cpu_kind = kinds(NODES)["intel-xeon-f6m167-4c"]
    (kind_run,) = plan_kinds(config, [cpu_kind], out=tmp_path)
    local = plan(config, out=tmp_path)
    assert kind_run.plan.hardware == "intel-xeon-f6m167-4c"
    assert kind_run.plan.run_dir == tmp_path / "intel-xeon-f6m167-4c" / local.run_id
    assert kind_run.plan.sources == local.sources and kind_run.plan.sources
    assert kind_run.plan.cells == local.cells
