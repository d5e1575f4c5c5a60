"""The invariant check fails, and says what changed, when a count, a conversion or the model set changes."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from bench import cli
from bench.models import invariants

SETTINGS = invariants.Settings()


@pytest.fixture(scope="module")
def blog() -> dict:
    """The real invariants of the smallest registered network, measured now."""
    return invariants.measure("blog_repvgg", SETTINGS)


def test_a_fresh_measurement_matches_itself_and_holds_real_counts(blog: dict) -> None:
    assert invariants.record_differences("blog_repvgg", blog, copy.deepcopy(blog)) == []
    assert blog["params"]["converted"] == blog["params"]["deploy"] < blog["params"]["train"]
    assert blog["ops_per_forward"]["deploy"]["convolution"] * 2 == blog["ops_per_forward"]["train"]["convolution"]
    assert blog["ops_device"] == "cpu" and blog["equivalence"]["max_rel_err"] < 1e-4


@pytest.mark.parametrize("path, value, expected", [
    (("params", "train"), 1, "blog_repvgg: params.train"),
    (("macs", "train"), -2, "blog_repvgg: macs.train"),
    (("ops_per_forward", "deploy", "convolution"), 1, "blog_repvgg: ops_per_forward.deploy.convolution"),
    (("ops_per_forward", "train", "batchnorm"), -1, "blog_repvgg: ops_per_forward.train.batchnorm"),
])
def test_a_changed_count_is_named_with_old_and_new_value(blog: dict, path: tuple, value: int,
                                                         expected: str) -> None:
    changed = copy.deepcopy(blog)
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] += value
    differences = invariants.record_differences("blog_repvgg", blog, changed)
    assert len(differences) == 1 and differences[0].startswith(expected)
    assert f"({value:+d})" in differences[0]


def test_a_broken_conversion_fails_even_with_unchanged_counts(blog: dict) -> None:
    broken = copy.deepcopy(blog)
    broken["equivalence"]["max_rel_err"] = 0.3
    differences = invariants.record_differences("blog_repvgg", blog, broken)
    assert len(differences) == 1 and "converted form differs from the training form" in differences[0]
    nan = copy.deepcopy(blog)
    nan["equivalence"]["max_rel_err"] = float("nan")
    assert invariants.record_differences("blog_repvgg", blog, nan)


def test_deploy_forms_that_disagree_are_reported(blog: dict) -> None:
    odd = copy.deepcopy(blog)
    odd["params"]["converted"] += 64
    expected = copy.deepcopy(odd)
    assert any("the two deploy forms disagree" in d for d in invariants.record_differences("x", expected, odd))


def test_model_set_changes_are_reported() -> None:
    out = invariants.model_set_differences(["a", "b"], ["b", "c"])
    assert out == ["c: registered but not in the invariants file", "a: in the invariants file but no longer registered"]


def test_failure_message_says_how_to_regenerate(tmp_path: Path) -> None:
    path = tmp_path / "inv.json"
    path.write_text(json.dumps({"torch_version": "0.0.1"}), encoding="utf-8")
    text = invariants.failure_message(["m: params.train 1 -> 2 (+1)"], path)
    assert "m: params.train 1 -> 2" in text and invariants.REGENERATE in text and str(path) in text
    assert "written with torch 0.0.1" in text


def test_cli_write_then_check_then_detect_an_edit(tmp_path: Path, capsys) -> None:
    path = tmp_path / "inv.json"
    assert cli.main(["invariants", "--write", "--file", str(path), "--models", "blog_repvgg"]) == 0
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert list(doc["models"]) == ["blog_repvgg"] and doc["settings"] == invariants.Settings().__dict__
    assert cli.main(["invariants", "--file", str(path), "--models", "blog_repvgg"]) == 0
    ops = doc["models"]["blog_repvgg"]["ops_per_forward"]["deploy"]
    ops["all"] -= 3
    path.write_text(json.dumps(doc), encoding="utf-8")
    capsys.readouterr()
    assert cli.main(["invariants", "--file", str(path), "--models", "blog_repvgg"]) == 1
    err = capsys.readouterr().err
    assert f"blog_repvgg: ops_per_forward.deploy.all {ops['all']} -> {ops['all'] + 3} (+3)" in err and "--write" in err
    assert cli.main(["invariants", "--file", str(path), "--models", "repvgg_a9"]) == 2
    err = capsys.readouterr().err
    assert "model 'repvgg_a9' is unknown (did you mean 'repvgg_a" in err and "; known: " in err


def test_bench_invariants_writes_then_names_a_changed_count(tmp_path: Path) -> None:
    """`bench invariants` is a command of its own (`bench.models.invariants`); the torch-free baseline and
    compare commands do not reach it."""
    import subprocess
    import sys

    path = tmp_path / "inv.json"
    base = [sys.executable, "-m", "bench", "invariants", "--file", str(path), "--models", "blog_repvgg"]
    assert subprocess.run([*base, "--write"], capture_output=True).returncode == 0
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["models"]["blog_repvgg"]["macs"]["deploy"] += 1
    path.write_text(json.dumps(doc), encoding="utf-8")
    failed = subprocess.run(base, capture_output=True, text=True)
    assert failed.returncode == 1 and "blog_repvgg: macs.deploy" in failed.stderr
    probe = "import sys, bench.compare.baseline, bench.compare.command; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "False"
