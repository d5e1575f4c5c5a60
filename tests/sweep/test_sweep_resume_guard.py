"""Resuming a run folder refuses, before anything is measured, what would fail or mix runs: a cell file
whose value has the wrong type, cells of another run (a renamed folder), cells of other settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.results.io import RunWriter
from bench import cli
from bench.sweep.plan.config import from_dict
from bench.sweep.driver.runner import plan
from tests.results.results_rows import row

CONFIG = ('name = "guard"\n[axes]\nmodel = ["repvgg_a0"]\nbatch_size = [1]\nresolution = [32]\n'
          '[run]\ndevice = "cpu"\nnum_threads = 1\nseed = 0\n'
          '[timing]\nmin_samples = 5\nmin_time_s = 0.05\ntimeout_s = 0.3\nwarmup_max_s = 0.2\n')


def _folder_with_one_cell(tmp_path: Path, **fields) -> tuple[Path, Path]:
    """The config file and the run folder `--run-id mine` resumes, holding one finished cell (another
    resolution than the config's, so the sweep has work left)."""
    config = tmp_path / "guard.toml"
    config.write_text(CONFIG)
    planned = plan(from_dict({"name": "guard", "axes": {"model": ["repvgg_a0"]}}), out=tmp_path / "results",
                   run_id="mine")
    samples = np.random.default_rng(0).lognormal(0, 0.05, 10)
    values = {"run_id": "mine", "hardware": planned.hardware, "seed": 0, "num_threads": 1, **fields}
    RunWriter(planned.run_dir).append(row("repvgg_a0", "train", 1, samples=samples, **values), samples)
    return config, planned.run_dir


def _resume(config: Path, tmp_path: Path, *extra: str) -> int:
    return cli.main(["run", "--config", str(config), "--out", str(tmp_path / "results"), "--run-id", "mine", *extra])


def test_a_cell_file_with_a_wrong_typed_value_is_named(tmp_path: Path, capsys) -> None:
    config, run_dir = _folder_with_one_cell(tmp_path)
    cell = next((run_dir / "cells").glob("*.json"))
    record = json.loads(cell.read_text())
    record["row"]["n_samples"] = "ten"
    cell.write_text(json.dumps(record))
    assert _resume(config, tmp_path) == 2
    err = capsys.readouterr().err
    assert f"{cell}: column 'n_samples' holds 'ten' (a str), not a int64" in err
    assert "move it away and run the same command again" in err


def test_a_renamed_run_is_refused_before_anything_is_measured(tmp_path: Path, capsys) -> None:
    config, run_dir = _folder_with_one_cell(tmp_path, run_id="guard-1234abcd")
    assert _resume(config, tmp_path) == 2
    err = capsys.readouterr().err
    assert f"{run_dir} holds 1 cell(s) of run 'guard-1234abcd'" in err and "renamed or copied" in err
    assert len(list((run_dir / "cells").glob("*.json"))) == 1, "nothing was measured"


@pytest.mark.parametrize("fields, extra, message", [
    ({"seed": 7}, (), "holds cells measured with seed 7 (1 cells); this sweep would use seed 0"),
    ({"num_threads": 3}, (), "holds cells measured with num_threads 3 (1 cells); this sweep would use num_threads 1"),
    ({}, ("--seed", "5"), "holds cells measured with seed 0 (1 cells); this sweep would use seed 5"),
])
def test_a_reused_run_id_with_other_settings_is_refused_naming_them(tmp_path: Path, capsys, fields, extra,
                                                                     message) -> None:
    config, run_dir = _folder_with_one_cell(tmp_path, **fields)
    assert _resume(config, tmp_path, *extra) == 2
    err = capsys.readouterr().err
    assert message in err and "--run-id NAME to measure these settings into a new folder" in err
    assert len(list((run_dir / "cells").glob("*.json"))) == 1, "nothing was measured"


def test_without_threads_in_the_config_the_machines_default_is_compared(tmp_path: Path, capsys) -> None:
    """Rows measured with --threads N, resumed without it, would be mixed with the torch default's."""
    import torch

    default = torch.get_num_threads()
    config, run_dir = _folder_with_one_cell(tmp_path, num_threads=default + 1)
    config.write_text(CONFIG.replace("num_threads = 1\n", ""))
    assert _resume(config, tmp_path) == 2
    assert (f"measured with num_threads {default + 1} (1 cells); this sweep would use num_threads {default}"
            in capsys.readouterr().err)
