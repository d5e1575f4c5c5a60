"""bench.results.load / load_samples: which folders they read and the errors a bad file gets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.results import ResultsFileError, load, load_samples
from bench.compare.baseline import promote
from bench.results.schema import SCHEMA_VERSION
from tests.results.results_rows import cells, write_run


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "results"
    write_run(root / "cpu-a" / "run-1", cells(4), rng, run_id="run-1", hardware="cpu-a", n=5)
    write_run(root / "cpu-a" / "run-2", cells(6), rng, run_id="run-2", hardware="cpu-a", n=5)
    write_run(root / "gpu-b" / "run-3", cells(2), rng, run_id="run-3", hardware="gpu-b", n=5)
    promote(root / "cpu-a" / "run-1", root)
    return root


def test_reads_a_run_a_hardware_folder_and_all_results_but_not_baselines(results: Path) -> None:
    assert len(load(results / "cpu-a" / "run-1")) == 4
    assert sorted(load(results / "cpu-a")["run_id"].unique()) == ["run-1", "run-2"]
    everything = load(results)
    assert len(everything) == 12
    assert sorted(everything["hardware"].unique()) == ["cpu-a", "gpu-b"]
    assert len(load_samples(results)) == 12 * 5


def test_a_baseline_file_reads_with_its_samples(results: Path) -> None:
    baseline = results / "baselines" / "cpu-a.parquet"
    assert len(load(baseline)) == 4
    samples = load_samples(baseline)
    assert len(samples) == 20 and set(samples["run_id"]) == {"run-1"}


def _rewrite(path: Path, change) -> None:
    table = change(pq.read_table(path))
    pq.write_table(table, path)


def test_missing_column_names_the_file_and_the_column(results: Path) -> None:
    path = results / "cpu-a" / "run-2" / "summary.parquet"
    _rewrite(path, lambda t: t.drop(["status"]))
    with pytest.raises(ResultsFileError, match=r"run-2/summary\.parquet: missing required column\(s\) status"):
        load(results)


def test_wrong_schema_version_names_the_file(results: Path) -> None:
    path = results / "gpu-b" / "run-3" / "summary.parquet"
    version = pa.array([SCHEMA_VERSION + 1] * 2, type=pa.int64())
    _rewrite(path, lambda t: t.set_column(t.schema.get_field_index("schema_version"), "schema_version", version))
    with pytest.raises(ResultsFileError, match=rf"run-3/summary\.parquet: schema_version {SCHEMA_VERSION + 1}"):
        load(results)


def test_unknown_status_names_the_file_and_lists_the_known(results: Path) -> None:
    path = results / "cpu-a" / "run-1" / "summary.parquet"
    status = pa.array(["ok", "exploded", "ok", "ok"])
    _rewrite(path, lambda t: t.set_column(t.schema.get_field_index("status"), "status", status))
    with pytest.raises(ResultsFileError, match=r"run-1/summary\.parquet: status 'exploded' is unknown; known: ok"):
        load(results / "cpu-a")


def test_unreadable_file_and_missing_samples_name_the_file(results: Path) -> None:
    (results / "cpu-a" / "run-1" / "summary.parquet").write_bytes(b"not parquet")
    with pytest.raises(ResultsFileError, match=r"run-1/summary\.parquet: cannot be read as Parquet"):
        load(results / "cpu-a" / "run-1")
    (results / "gpu-b" / "run-3" / "samples.parquet").unlink()
    with pytest.raises(ResultsFileError, match=r"run-3/samples\.parquet: does not exist"):
        load_samples(results / "gpu-b")
    (results / "cpu-a" / "run-2" / "samples.parquet").write_bytes(b"")
    with pytest.raises(ResultsFileError, match=r"run-2/samples\.parquet"):
        load_samples(results / "cpu-a" / "run-2")


def test_a_folder_without_results_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ResultsFileError, match="no summary.parquet found"):
        load(tmp_path)
    with pytest.raises(ResultsFileError, match="does not exist"):
        load(tmp_path / "nowhere")


def test_missing_sample_column_names_the_file(results: Path) -> None:
    path = results / "cpu-a" / "run-1" / "samples.parquet"
    _rewrite(path, lambda t: t.drop(["latency_ms"]))
    with pytest.raises(ResultsFileError, match=r"run-1/samples\.parquet: missing sample column\(s\) latency_ms"):
        load_samples(results / "cpu-a" / "run-1")


def _killed_sweep(run: Path, n_cells: int = 4, n: int = 5) -> Path:
    """The folder a SIGKILLed sweep leaves: cell files written unit by unit, its tables still those written
    when it opened the folder (they follow at a flush, at most every FLUSH_EVERY_S, which never came)."""
    from bench.results.io import RunWriter
    from tests.results.results_rows import lognormal, row

    writer = RunWriter(run)
    rng = np.random.default_rng(3)
    for key in cells(n_cells):
        samples = lognormal(rng, 2.0, n)
        writer.write_unit([(row(*key, run_id=run.name, hardware=run.parent.name, samples=samples), samples)])
    assert len(pq.read_table(run / "summary.parquet")) == 0
    return run


def test_a_killed_sweeps_rows_are_read_from_its_cell_files_without_writing(tmp_path: Path, capsys) -> None:
    from bench.report.command import load_all
    from bench.results.read import tables_behind

    run = _killed_sweep(tmp_path / "results" / "cpu-a" / "run-k")
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    assert tables_behind(run) == 4
    assert len(load(run)) == 4 and len(load_samples(run)) == 4 * 5
    assert len(load(tmp_path / "results")) == 4 and set(load(run)["status"]) == {"ok"}
    assert len(load_all([tmp_path / "results"])) == 4
    err = capsys.readouterr().err
    assert f"{run}: its tables are 4 cell(s) behind its cell files (its sweep was stopped" in err
    assert "the same `bench run` command resumes the run" in err
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before, "a reader wrote into the run"
    from bench.results.io import RunWriter

    RunWriter(run)
    assert tables_behind(run) == 0 and len(pq.read_table(run / "summary.parquet")) == 4


def test_a_cell_file_with_a_wrong_typed_value_is_named_by_readers(tmp_path: Path) -> None:
    import json

    run = _killed_sweep(tmp_path / "results" / "cpu-a" / "run-k")
    cell = sorted((run / "cells").glob("*.json"))[1]
    record = json.loads(cell.read_text())
    record["row"]["latency_ms_median"] = "fast"
    cell.write_text(json.dumps(record))
    with pytest.raises(ResultsFileError, match=rf"{cell}: column 'latency_ms_median' holds 'fast' \(a str\), "
                                               r"not a double; .*move it away and run the same command again"):
        load(run)
