"""Own models (`FILE.py:factory`, `package.module:factory`): parsing, resolution, errors, and a real sweep."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from torch import nn

from bench.models import create, info
from bench.models.user import UserModelError, parse
from bench.reparam import to_deploy
from bench.sweep.plan.axes import ConfigError, check_models

ROOT = Path(__file__).resolve().parents[2]
NET = textwrap.dedent("""
    from torch import nn
    from bench.reparam import RepVGGBlock

    def build(width=8, depth=2):
        blocks = [RepVGGBlock(3, width, stride=2)] + [RepVGGBlock(width, width) for _ in range(depth - 1)]
        return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))

    def not_a_module():
        return 3

    def broken():
        raise RuntimeError("no weights here")

    NOT_CALLABLE = 5
""")


@pytest.fixture()
def net_file(tmp_path) -> Path:
    path = tmp_path / "my_net.py"
    path.write_text(NET)
    return path


def test_parse_keyword_arguments_as_literals():
    parsed = parse("nets/a.py:build:width=2:scale=0.5:se=True:act=relu:name='x'")
    assert parsed.source == "nets/a.py" and parsed.factory == "build" and parsed.is_file
    assert dict(parsed.kwargs) == {"width": 2, "scale": 0.5, "se": True, "act": "relu", "name": "x"}


@pytest.mark.parametrize("spec, message", [
    ("a.py:9x", "FACTORY a Python name"),
    ("a.py:build:width", "is not KEY=VALUE"),
    ("a.py:build:w=1:w=2", "repeated or reserved"),
    ("a.py:build:deploy=True", "repeated or reserved"),
    ("a.py:build:w=[1,2]", "is a list"),
    ("a.py:build:w=1+", "no Python literal"),
])
def test_malformed_specs_name_the_problem(spec, message):
    with pytest.raises(UserModelError, match=message):
        parse(spec)


def test_file_factory_resolves_with_its_source_and_hash(net_file):
    import hashlib

    spec = f"{net_file}:build:width=4:depth=3"
    model = create(spec)
    assert isinstance(model, nn.Sequential) and model[0].in_channels == 3 and len(model) == 6
    digest = hashlib.sha256(net_file.read_bytes()).hexdigest()
    assert info(spec).source == f"{net_file.resolve()} sha256:{digest}" and info(spec).family == "user"
    deployed = create(spec, deploy=True)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in deployed.modules())


def test_package_module_factory_resolves(net_file, monkeypatch):
    monkeypatch.syspath_prepend(str(net_file.parent))
    model = create("my_net:build:width=4").eval()
    assert "my_net (" in info("my_net:build").source and "sha256:" in info("my_net:build").source
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) > 0
    assert not any(isinstance(m, nn.BatchNorm2d) for m in to_deploy(model).modules())


@pytest.mark.parametrize("factory, message", [
    ("not_a_module", "returned a int, not a torch.nn.Module"),
    ("broken", "the factory raised RuntimeError: no weights here"),
    ("NOT_CALLABLE", "is a int, not callable"),
    ("missing", "has no attribute 'missing'"),
])
def test_bad_factories_fail_at_plan_time_naming_the_spec(net_file, factory, message):
    spec = f"{net_file}:{factory}"
    with pytest.raises(ConfigError, match=message) as caught:
        check_models([spec])
    assert spec in str(caught.value)


def test_missing_file_and_failing_import(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        check_models([f"{tmp_path}/nope.py:build"])
    bad = tmp_path / "bad.py"
    bad.write_text("import no_such_package_here\n")
    with pytest.raises(ConfigError, match="importing .* failed: ModuleNotFoundError"):
        check_models([f"{bad}:build"])
    with pytest.raises(ConfigError, match="no_such_pkg_zz"):
        check_models(["no_such_pkg_zz.models:build"])


def test_bench_run_times_an_own_model_to_ok_rows(net_file, tmp_path):
    """The CLI path: a file factory through plan, the cell subprocesses, the gate and the result rows."""
    config = tmp_path / "fast.toml"
    config.write_text(textwrap.dedent("""
        name = "own"
        [axes]
        model = ["repvgg_a0"]
        [run]
        num_threads = 1
        [timing]
        min_samples = 5
        min_time_s = 0.05
        timeout_s = 0.3
        warmup_max_s = 0.2
    """))
    spec = f"{net_file}:build:width=8"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--config", str(config), "--models", spec, "--batch", "2",
         "--resolution", "32", "--device", "cpu", "--out", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    from bench.results import load

    run_dir = next(p for p in (tmp_path / "out").glob("*/*") if p.is_dir())
    df = load(run_dir)
    assert sorted(df["form"]) == ["deploy", "train"] and set(df["model"]) == {spec}
    assert (df["status"] == "ok").all(), df[["form", "status", "error"]]
    deploy = df[df["form"] == "deploy"].iloc[0]
    assert pd.notna(deploy["max_rel_err"]) and deploy["max_rel_err"] <= deploy["tolerance"]


HOSTILE = {
    "exits.py": "import sys\nsys.exit(0)\n",
    "parses.py": textwrap.dedent("""
        import argparse
        parser = argparse.ArgumentParser()
        parser.add_argument("--epochs", type=int, required=True)
        ARGS = parser.parse_args()
    """),
    "interrupts.py": "def build():\n    raise KeyboardInterrupt\n",
}


@pytest.mark.parametrize("file, factory, message", [
    ("exits.py", "build", r"importing .* failed: SystemExit\(0\): the model's code called sys.exit"),
    ("parses.py", "build", r"importing .* failed: SystemExit\(2\)"),
    ("interrupts.py", "build", "the factory raised KeyboardInterrupt"),
])
def test_a_model_that_exits_or_interrupts_is_a_named_error(tmp_path, capsys, file, factory, message):
    """sys.exit() at import, argparse at import (which must not read our command line) and a
    KeyboardInterrupt from the factory are plan-time errors naming the spec, not the end of the command."""
    path = tmp_path / file
    path.write_text(HOSTILE[file])
    spec = f"{path}:{factory}"
    with pytest.raises(ConfigError, match=message) as caught:
        check_models([spec])
    assert spec in str(caught.value)
    usage = capsys.readouterr().err
    assert ("usage: parses.py" in usage) == (file == "parses.py") and "bench" not in usage, usage


def test_a_model_that_exits_in_the_worker_is_an_error_row_naming_it(tmp_path):
    """User code inside a worker (the factory called again there, the forward) that calls sys.exit() is
    the cell's error, not a silent end of the worker."""
    from bench.sweep.plan.cells import expand
    from bench.sweep.plan.config import from_dict
    from bench.sweep.protocol import UnitSpec
    from bench.sweep.worker.unit import ModelCache, run_unit

    path = tmp_path / "late_exit.py"
    path.write_text(textwrap.dedent("""
        import sys
        from torch import nn
        CALLS = []

        def second_call_exits():
            CALLS.append(1)
            if len(CALLS) > 1:
                sys.exit(3)
            return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))

        class Exits(nn.Module):
            def forward(self, x):
                sys.exit(0)

        def forward_exits():
            return Exits()
    """))
    for factory, code in (("second_call_exits", "3"), ("forward_exits", "0")):
        spec = f"{path}:{factory}"
        check_models([spec])
        cells = expand(from_dict({"axes": {"model": [spec], "batch_size": [1], "resolution": [32]}}), "cpu")
        unit = UnitSpec(cells=tuple(c for c in cells if not c.skip_reason), device="cpu")
        outcome = run_unit(unit, ModelCache(seed=0))
        assert {c.status for c in outcome.cells} == {"error"}, outcome
        assert f"SystemExit({code})" in outcome.cells[0].error, outcome.cells[0].error


@pytest.mark.parametrize("command", ["run", "export"])
def test_bench_run_and_export_exit_2_naming_a_model_that_exits(tmp_path, command):
    path = tmp_path / "exits.py"
    path.write_text(HOSTILE["exits.py"])
    spec = f"{path}:build"
    args = (["run", "--preset", "smoke", "--models", spec, "--device", "cpu", "--dry-run"] if command == "run"
            else ["export", spec, "--format", "state_dict", "--out", str(tmp_path / "m.pt")])
    done = subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert spec in done.stderr and "SystemExit(0)" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "m.pt").exists()
