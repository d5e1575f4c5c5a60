"""bench baseline update/show, and bench compare against a baseline file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.results import load, load_samples
from bench.results.io import RunWriter
from tests.results.results_rows import cells, write_run

KEYS = cells(12)


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    rng = np.random.default_rng(8)
    root = tmp_path / "results"
    write_run(root / "cpu-x" / "run-1", KEYS, rng, run_id="run-1", hardware="cpu-x", n=25)
    RunWriter(root / "cpu-x" / "run-1").write_env({"hardware": "cpu-x", "python": "3.11"})
    write_run(root / "cpu-x" / "run-2", KEYS, rng, run_id="run-2", hardware="cpu-x", n=25, scale={KEYS[3]: 1.3})
    return root


def test_update_promotes_summary_samples_and_env(root: Path, capsys) -> None:
    assert main(["baseline", "update", str(root / "cpu-x" / "run-1"), "--results-root", str(root)]) == 0
    assert "run run-1 (12 cells: ok 12)" in capsys.readouterr().out
    folder = root / "baselines"
    assert sorted(p.name for p in folder.iterdir()) == ["cpu-x.env.json", "cpu-x.parquet", "cpu-x.samples.parquet"]
    assert load(folder / "cpu-x.parquet").equals(load(root / "cpu-x" / "run-1"))
    assert len(load_samples(folder / "cpu-x.parquet")) == 12 * 25
    assert json.loads((folder / "cpu-x.env.json").read_text())["python"] == "3.11"
    assert len(load(root)) == 24, "baselines are copies and must not be read twice"


def test_compare_against_the_baseline_file(root: Path, capsys) -> None:
    main(["baseline", "update", str(root / "cpu-x" / "run-1"), "--results-root", str(root)])
    capsys.readouterr()
    assert main(["compare", str(root / "baselines" / "cpu-x.parquet"), str(root / "cpu-x" / "run-2")]) == 1
    assert "1 cell(s) SLOWER" in capsys.readouterr().out


def test_update_replaces_and_show_lists(root: Path, capsys) -> None:
    main(["baseline", "update", str(root / "cpu-x" / "run-1"), "--results-root", str(root)])
    assert main(["baseline", "update", str(root / "cpu-x" / "run-2"), "--results-root", str(root)]) == 0
    assert "replaced run run-1" in capsys.readouterr().out
    assert main(["baseline", "show", "--results-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "cpu-x" in out and "run-2" in out and "ok 12" in out


def test_update_refuses_a_folder_of_several_runs_and_show_without_baselines(root: Path, capsys) -> None:
    assert main(["baseline", "update", str(root / "cpu-x"), "--results-root", str(root)]) == 2
    assert "holds 2 run(s) (run-1, run-2)" in capsys.readouterr().err
    assert main(["baseline", "show", "gpu-y", "--results-root", str(root)]) == 1
    assert "no baseline for gpu-y" in capsys.readouterr().err


def _run_with(root: Path, statuses: dict[int, str], cv: dict[int, float] | None = None) -> Path:
    """A run of KEYS where chosen cells failed (status) or are noisy (latency_cv)."""
    from tests.results.results_rows import lognormal, row

    rng = np.random.default_rng(3)
    items = []
    for i, (model, form, batch) in enumerate(KEYS):
        samples = lognormal(rng, 1.0 + batch, 20)
        status = statuses.get(i, "ok")
        items.append((row(model, form, batch, run_id="run-3", hardware="cpu-x", status=status,
                          samples=samples if status in ("ok", "mismatch") else None,
                          latency_cv=(cv or {}).get(i, 0.01)), samples if status in ("ok", "mismatch") else []))
    run_dir = root / "cpu-x" / "run-3"
    RunWriter(run_dir).extend(items)
    return run_dir


def test_update_refuses_failed_and_noisy_cells_without_force(root: Path, capsys) -> None:
    run_dir = _run_with(root, {1: "error", 2: "timeout", 3: "mismatch"}, cv={4: 0.41})
    argv = ["baseline", "update", str(run_dir), "--results-root", str(root)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "4 of 12 cells would be promoted failed or noisy" in err
    assert ": error" in err and ": timeout" in err and ": mismatch" in err and "noisy (latency CV 41.0% > 5%)" in err
    assert "--force" in err
    assert not (root / "baselines" / "cpu-x.parquet").exists(), "nothing is written when refused"
    assert main([*argv, "--force"]) == 0
    assert (root / "baselines" / "cpu-x.parquet").is_file()


@pytest.mark.parametrize("content", ["", "{not json", "[]", "{}"])
def test_update_refuses_a_corrupt_or_empty_env_json(root: Path, capsys, content: str) -> None:
    run_dir = root / "cpu-x" / "run-1"
    (run_dir / "env.json").write_text(content)
    assert main(["baseline", "update", str(run_dir), "--results-root", str(root)]) == 2
    assert f"{run_dir / 'env.json'}:" in capsys.readouterr().err
    assert not (root / "baselines").exists()


def test_invariants_messages_name_the_documented_command(tmp_path: Path, capsys) -> None:
    pytest.importorskip("torch")
    code = main(["invariants", "--file", str(tmp_path / "none.json"), "--models", "repvgg_a0"])
    assert code == 2
    from bench.models import invariants

    assert invariants.REGENERATE == "python -m bench invariants --write"


def test_a_corrupt_current_baseline_says_how_to_replace_it_and_force_replaces_it(root: Path, capsys) -> None:
    old = root / "baselines" / "cpu-x.parquet"
    old.parent.mkdir()
    old.write_bytes(b"<<<<<<< HEAD\nnot parquet\n")
    argv = ["baseline", "update", str(root / "cpu-x" / "run-1"), "--results-root", str(root)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"the current baseline is unreadable: {old}" in err and f"delete {old}" in err and "--force" in err
    assert main([*argv, "--force"]) == 0
    assert "replaced an unreadable baseline (cpu-x.parquet)" in capsys.readouterr().out
    assert load(old).equals(load(root / "cpu-x" / "run-1"))


def test_a_results_root_that_takes_no_files_exits_2_without_a_traceback(root: Path, tmp_path: Path, capsys) -> None:
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "baselines").write_text("a file where the folder goes")
    targets = [blocked] + ([Path("/proc/bench-baselines-test")] if Path("/proc/self").is_dir() else [])
    for target in targets:
        assert main(["baseline", "update", str(root / "cpu-x" / "run-1"), "--results-root", str(target)]) == 2
        err = capsys.readouterr().err
        assert "cannot write" in err and "--results-root DIR" in err and "Traceback" not in err, err


def test_baseline_update_refuses_a_run_a_sweep_is_writing_and_reads_a_killed_ones_cells(tmp_path: Path,
                                                                                          capsys) -> None:
    import os

    from bench.results.runlock import run_lock
    from tests.results.test_load import _killed_sweep

    run = _killed_sweep(tmp_path / "results" / "cpu-a" / "run-k")
    argv = ["baseline", "update", str(run), "--results-root", str(tmp_path / "results")]
    with run_lock(run):
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{run} is being swept (pid {os.getpid()}), so its rows are not final" in err
    assert not (tmp_path / "results" / "baselines").exists()
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "its tables are 4 cell(s) behind" in captured.err and "run run-k (4 cells: ok 4)" in captured.out


def test_baseline_update_of_an_empty_run_says_so(tmp_path: Path, capsys) -> None:
    run = tmp_path / "results" / "cpu-a" / "run-e"
    RunWriter(run)
    assert main(["baseline", "update", str(run), "--results-root", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert f"{run}: holds no result rows" in err and "0 run(s)" not in err
