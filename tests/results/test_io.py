"""RunWriter: round trip, retries, resume keys, and a writer killed with SIGKILL at random moments."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.csv as pacsv
import pytest

from bench.results import load, load_samples
from bench.results.io import RunWriter, cell_hash
from bench.results.schema import AXES, COLUMNS, SAMPLE_COLUMNS
from tests.results.results_rows import cells, row

REPO = Path(__file__).resolve().parents[2]


def test_append_round_trips_rows_and_samples(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path / "run")
    rng = np.random.default_rng(0)
    written = {}
    for batch in (1, 8, 32):
        samples = rng.lognormal(0, 0.1, 17 + batch)
        writer.append(row(batch=batch, samples=samples, peak_rss_mib=123.5), samples)
        written[batch] = samples
    writer.append(row(batch=256, status="oom"), [])
    summary = load(tmp_path / "run")
    assert list(summary.columns) == list(COLUMNS)
    assert sorted(summary["batch_size"]) == [1, 8, 32, 256]
    assert summary.loc[summary["batch_size"].eq(256), "status"].item() == "oom"
    assert summary["peak_rss_mib"].dropna().eq(123.5).all()
    samples = load_samples(tmp_path / "run")
    assert list(samples.columns) == list(SAMPLE_COLUMNS)
    for batch, values in written.items():
        got = samples[samples["batch_size"].eq(batch)].sort_values("sample_index")["latency_ms"]
        np.testing.assert_array_equal(got.to_numpy(), values)
    csv = pacsv.read_csv(tmp_path / "run" / "summary.csv").to_pandas()
    assert len(csv) == 4 and list(csv.columns) == list(COLUMNS)


def test_reappend_replaces_the_cell_and_retry_failed_drops_errors(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path / "run")
    writer.append(row(batch=1, status="error"), [])
    writer.append(row(batch=8, status="timeout"), [])
    writer.append(row(batch=32, status="oom"), [])
    writer.append(row(batch=64, status="skipped"), None)
    key = lambda b: ("repvgg_a0", "deploy", "infer", b, "fp32", "contiguous", "eager", 224)
    assert writer.finished_keys() == {key(1), key(8), key(32), key(64)}
    assert writer.finished_keys(retry_failed=True) == {key(32), key(64)}
    retried = np.array([2.0, 2.1, 1.9])
    writer.append(row(batch=1, samples=retried), retried)
    df = load(tmp_path / "run")
    assert len(df) == 4
    assert df.loc[df["batch_size"].eq(1), "status"].item() == "ok"
    assert RunWriter(tmp_path / "run").finished_keys(retry_failed=True) == {key(1), key(32), key(64)}
    assert len(load_samples(tmp_path / "run")) == 3


def test_keys_match_the_axes_in_schema_order(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path / "run")
    result = row(batch=8)
    writer.append(result, [1.0])
    (key,) = writer.finished_keys()
    assert key == tuple(getattr(result, a) for a in AXES) == result.cell_key()
    assert (tmp_path / "run" / "cells" / f"{cell_hash(key)}.json").is_file()


def test_a_row_of_another_run_is_refused(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path / "run")
    writer.append(row(batch=1, run_id="run-a"), [1.0])
    with pytest.raises(ValueError, match="run-b"):
        writer.append(row(batch=8, run_id="run-b"), [1.0])
    with pytest.raises(ValueError, match="finite"):
        writer.append(row(batch=8, run_id="run-a"), [1.0, float("nan")])


def test_write_env_and_new_folder_is_loadable_before_any_cell(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path / "run")
    writer.write_env({"torch": "2.x", "threads": 2})
    assert load(tmp_path / "run").empty
    assert load_samples(tmp_path / "run").empty
    assert '"threads": 2' in (tmp_path / "run" / "env.json").read_text()


CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from bench.results.io import RunWriter
    from tests.results.results_rows import cells, row

    run_dir, n = sys.argv[1], int(sys.argv[2])
    writer = RunWriter(run_dir)
    done = writer.finished_keys()
    for i, (model, form, batch) in enumerate(cells(n)):
        status = "skipped" if i % 7 == 3 else "ok"
        samples = np.random.default_rng(i).lognormal(0, 0.1, 0 if status == "skipped" else 50 + 40 * (i % 5))
        result = row(model, form, batch, status=status, samples=samples)
        if result.cell_key() in done:
            continue
        writer.append(result, samples)
        print(i, flush=True)
""")


def _expected(i: int) -> np.ndarray:
    return np.random.default_rng(i).lognormal(0, 0.1, 0 if i % 7 == 3 else 50 + 40 * (i % 5))


def _check_consistent(run_dir: Path, n_completed: int, n: int, strict: bool = False) -> int:
    """Every file loads; the rows are the completed cells plus at most the one in flight; samples intact.

    The tables are replaced one after another (samples, summary.parquet, summary.csv), so right after a
    kill the samples may hold one cell more than the summary and the CSV one row less; `strict` (after a
    writer reopened the folder) requires all three to agree.
    """
    summary = load(run_dir)
    samples = load_samples(run_dir)
    csv_rows = pacsv.read_csv(run_dir / "summary.csv").num_rows
    order = {c: i for i, c in enumerate(cells(n))}
    indices = sorted(order[(r.model, r.form, r.batch_size)] for r in summary.itertuples())
    assert indices == list(range(len(indices)))
    assert n_completed <= len(indices) <= n_completed + 1
    sampled = {order[k] for k in samples.groupby(["model", "form", "batch_size"]).groups}
    nonempty = {i for i in indices if len(_expected(i))}
    extra = sampled - nonempty
    assert nonempty <= sampled and (extra <= {len(indices)} if not strict else not extra)
    assert csv_rows == len(summary) if strict else csv_rows in (len(summary) - 1, len(summary))
    for i in indices:
        model, form, batch = cells(n)[i]
        got = samples[(samples["model"] == model) & (samples["form"] == form) & (samples["batch_size"] == batch)]
        np.testing.assert_array_equal(got.sort_values("sample_index")["latency_ms"].to_numpy(), _expected(i))
    return len(indices)


def _run_and_kill(run_dir: Path, n: int, env: dict, rng: np.random.Generator) -> list[str]:
    """Start the writer, let it finish 1-4 cells, SIGKILL it at a random moment of the next one."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(run_dir), str(n)], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, text=True)
    lines, stamps = [], []
    for _ in range(int(rng.integers(1, 5))):
        lines.append(child.stdout.readline())
        stamps.append(time.monotonic())
    one_cell = stamps[-1] - stamps[-2] if len(stamps) > 1 else 0.02
    time.sleep(rng.uniform(0.0, 1.5 * one_cell))
    os.kill(child.pid, signal.SIGKILL)
    rest, _ = child.communicate()
    assert child.returncode == -signal.SIGKILL
    return [*lines, rest]


def test_sigkill_at_random_moments_loses_at_most_the_cell_in_flight(tmp_path: Path) -> None:
    run_dir, n = tmp_path / "test-cpu" / "run-a", 40
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    rng = np.random.default_rng(7)
    completed: set[int] = set()
    for _ in range(6):
        printed = _run_and_kill(run_dir, n, env, rng)
        completed |= {int(i) for text in printed for i in text.split()}
        assert completed == set(range(len(completed)))
        in_summary = _check_consistent(run_dir, len(completed), n)
        reopened = RunWriter(run_dir)
        assert not list(run_dir.rglob(".*.tmp-*"))
        assert len(reopened) in (in_summary, in_summary + 1)
        assert _check_consistent(run_dir, len(reopened), n, strict=True) == len(reopened)
        completed = set(range(len(reopened)))
    finish = subprocess.run([sys.executable, "-c", CHILD, str(run_dir), str(n)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert finish.returncode == 0, finish.stderr
    assert _check_consistent(run_dir, n, n, strict=True) == n


def test_bench_results_and_compare_never_import_torch() -> None:
    modules = sorted(f"bench.{p.parent.name}.{p.stem}" for pkg in ("results", "compare")
                     for p in (REPO / "bench" / pkg).glob("*.py") if p.stem != "__init__")
    code = (f"import sys, bench.results, bench.compare, {', '.join(modules)}; "
            "bench.results.load; assert 'torch' not in sys.modules, 'torch imported'")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_frame_dtypes_survive_all_none_columns(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path / "run")
    writer.append(row(batch=1, status="skipped"), [])
    df = load(tmp_path / "run")
    assert pd.api.types.is_float_dtype(df["latency_ms_median"])
    assert pd.api.types.is_integer_dtype(df["batch_size"])


def test_a_committed_run_without_cell_files_keeps_its_rows_when_resumed(tmp_path: Path) -> None:
    """git ignores cells/: a cloned run has only the tables, and reopening it must not empty them."""
    import shutil

    writer = RunWriter(tmp_path / "run")
    samples = np.array([3.0, 1.0, 2.0])
    writer.append(row(batch=1, samples=samples), samples)
    writer.append(row(batch=8, status="oom"), [])
    shutil.rmtree(tmp_path / "run" / "cells")
    reopened = RunWriter(tmp_path / "run")
    assert len(reopened) == 2 and len(reopened.finished_keys()) == 2
    assert len(load(tmp_path / "run")) == 2
    np.testing.assert_array_equal(load_samples(tmp_path / "run")["latency_ms"], samples)
