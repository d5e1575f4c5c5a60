"""Real sweeps on the CPU: every column filled, a speedup row per pair, failures as rows (oom, timeout,
error, mismatch), resume and retry per pair, both isolation modes.

Cells are tiny (RepVGG-A0 at 32x32, batch 1-3, short timing windows) but run for real, in worker
processes, exactly as `bench run` does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.measure.compile_cache import INDUCTOR_RUNTIMES, RUN_KEY_ENV, run_key
from bench.results import load
from bench.results.io import RunWriter
from bench.results.schema import AXES, COLUMNS
from bench.sweep.plan.config import from_dict
from bench.sweep.driver.runner import plan, run_sweep

ROOT = Path(__file__).resolve().parents[2]
FAST_TIMING = {"min_samples": 5, "min_time_s": 0.05, "timeout_s": 0.3, "warmup_max_s": 0.2}
ALWAYS = ("run_id", "hardware", "device", "status", "schema_version", *AXES)
MEASURED_OK = (
    "started_at", "duration_s", "timing_regime", "latency_ms_median", "latency_ms_mean",
    "latency_ms_min", "latency_ms_p5", "latency_ms_p90", "latency_ms_p95", "latency_ms_p99",
    "latency_ms_iqr", "latency_cv", "n_samples", "stop_reason", "warmup_iters", "first_call_ms",
    "throughput_samples_s", "peak_rss_mib", "params_m", "gmacs", "torch_version", "num_threads",
    "tf32_matmul", "tf32_cudnn", "float32_matmul_precision", "cudnn_benchmark", "deterministic", "seed",
)


def _in_git_checkout() -> bool:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True)
    return done.returncode == 0


def _config(name: str, timeout_s: float = 120.0, faults: list | None = None, **axes) -> dict:
    return {
        "name": name,
        "axes": {"model": ["repvgg_a0"], "resolution": [32], **axes},
        "run": {"device": "cpu", "cell_timeout_s": timeout_s, "num_threads": 1},
        "timing": FAST_TIMING,
        "fault": faults or [],
    }


def _run(raw: dict, out: Path, isolation: str = "model", **kwargs) -> pd.DataFrame:
    summary = run_sweep(plan(from_dict(raw), out=out, run_id=kwargs.pop("run_id", None)),
                        isolation=isolation, **kwargs)
    return load(summary.run_dir)


def _speedups(out: Path) -> pd.DataFrame:
    run_dir = next(p for p in out.glob("*/*") if (p / "speedups.parquet").is_file())
    csv = pd.read_csv(run_dir / "speedups.csv")
    table = pd.read_parquet(run_dir / "speedups.parquet")
    assert list(csv.columns) == list(table.columns) and len(csv) == len(table)
    return table


def _row(df: pd.DataFrame, **axes) -> pd.Series:
    mask = pd.Series(True, index=df.index)
    for axis, value in axes.items():
        mask &= df[axis] == value
    assert mask.sum() == 1, f"expected one row for {axes}, got {int(mask.sum())}"
    return df[mask].iloc[0]


@pytest.mark.parametrize("isolation", ["model", "cell"])
def test_tiny_sweep_fills_every_column(tmp_path, isolation):
    df = _run(_config("tiny", precision=["fp32", "fp16"]), tmp_path, isolation=isolation)
    assert set(COLUMNS) <= set(df.columns)
    assert len(df) == 4
    for form in ("train", "deploy"):
        row = _row(df, form=form, precision="fp32")
        assert row["status"] == "ok", row["error"]
        for column in (*ALWAYS, *MEASURED_OK):
            assert pd.notna(row[column]), f"{form}: column {column} is empty"
        assert row["timing_regime"] == "cpu" and row["device"] == "cpu"
        assert pd.notna(row["git_sha"]) or not _in_git_checkout()
        assert row["throughput_samples_s"] == pytest.approx(1000.0 / row["latency_ms_median"])
        assert row["peak_rss_mib"] > 50
    deploy = _row(df, form="deploy", precision="fp32")
    assert deploy["max_rel_err"] <= deploy["tolerance"] == 1e-4
    assert deploy["deploy_recipe"] == "switch_to_deploy x22", "the row says how its deploy form was made"
    assert _row(df, form="train", precision="fp32")["params_m"] > deploy["params_m"]
    skipped = _row(df, form="train", precision="fp16")
    assert skipped["status"] == "skipped" and "not timed on CPU" in skipped["skip_reason"]
    run_dir = next(tmp_path.glob("*/tiny-*"))
    assert (run_dir / "env.json").is_file()
    samples = pd.read_parquet(run_dir / "samples.parquet")
    assert len(samples) == int(df.loc[df["status"] == "ok", "n_samples"].sum())
    pairs = _speedups(tmp_path)
    assert len(pairs) == 1, "one pair: fp16 cells are skipped on the CPU"
    pair = pairs.iloc[0]
    assert pair["status"] == "ok" and pair["precision"] == "fp32" and pair["paired"]
    train = _row(df, form="train", precision="fp32")
    assert pair["latency_ms_median_train"] == train["latency_ms_median"]
    assert pair["latency_ms_median_deploy"] == deploy["latency_ms_median"]
    assert pair["speedup_median"] > 0 and pd.notna(pair["stop_reason"])
    assert train["speedup_median"] == deploy["speedup_median"] == pair["speedup_median"]


def test_failures_become_rows_and_the_sweep_goes_on(tmp_path):
    faults = [
        {"kind": "oom", "match": {"batch_size": 2, "form": "train"}},
        {"kind": "perturb_deploy", "match": {"batch_size": 1}},
        {"kind": "error", "match": {"batch_size": 3, "form": "deploy"}},
    ]
    df = _run(_config("faults", faults=faults, batch_size=[1, 2, 3]), tmp_path)
    assert len(df) == 6
    assert _row(df, batch_size=1, form="train")["status"] == "ok"
    oom = _row(df, batch_size=2, form="train")
    assert oom["status"] == "oom" and "can't allocate memory" in oom["error"]
    partner = _row(df, batch_size=2, form="deploy")
    assert partner["status"] == "oom" and "pair's train form failed" in partner["error"]
    mismatch = _row(df, batch_size=1, form="deploy")
    assert mismatch["status"] == "mismatch" and mismatch["max_rel_err"] > mismatch["tolerance"]
    assert pd.notna(mismatch["latency_ms_median"]), "a mismatch is still measured"
    assert pd.isna(mismatch["speedup_median"])
    error = _row(df, batch_size=3, form="deploy")
    assert error["status"] == "error" and "RuntimeError" in error["error"]
    pairs = _speedups(tmp_path).set_index("batch_size")
    assert pairs.loc[1, "status"] == "mismatch" and pd.isna(pairs.loc[1, "speedup_median"])
    assert pairs.loc[2, "status"] == "oom" and pairs.loc[3, "status"] == "error"
    assert pairs["speedup_median"].isna().all(), "no speedup from a failed or mismatched pair"


def test_timeout_and_crash_become_rows(tmp_path):
    faults = [{"kind": "hang", "match": {"form": "train", "batch_size": 1}},
              {"kind": "crash", "match": {"form": "deploy", "batch_size": 2}}]
    start = time.monotonic()
    df = _run(_config("hang", timeout_s=8.0, faults=faults, batch_size=[1, 2, 3]), tmp_path)
    assert time.monotonic() - start < 60
    for form in ("train", "deploy"):
        hang = _row(df, form=form, batch_size=1)
        assert hang["status"] == "timeout" and "8 s timeout" in hang["error"]
        crash = _row(df, form=form, batch_size=2)
        assert crash["status"] == "error" and "SIGABRT" in crash["error"]
        assert _row(df, form=form, batch_size=3)["status"] == "ok", "a fresh worker after the crash"


def test_retry_failed_runs_a_pair_again_as_a_whole(tmp_path):
    faults = [{"kind": "error", "match": {"form": "deploy", "batch_size": 2}}]
    first = _run(_config("retry", faults=faults, batch_size=[1, 2]), tmp_path, run_id="retry")
    assert _row(first, batch_size=2, form="deploy")["status"] == "error"
    again = _run(_config("retry", batch_size=[1, 2]), tmp_path, run_id="retry", retry_failed=True)
    assert set(again["status"]) == {"ok"}
    for form in ("train", "deploy"):
        kept = _row(first, batch_size=1, form=form)["started_at"] == _row(again, batch_size=1, form=form)["started_at"]
        assert kept, "a finished pair is not run again"
    redone = _row(again, batch_size=2, form="train")["latency_ms_median"]
    assert redone != _row(first, batch_size=2, form="train")["latency_ms_median"], "the pair ran as a whole"
    pairs = _speedups(tmp_path)
    assert len(pairs) == 2 and set(pairs["status"]) == {"ok"}


def _bench_run(config_path: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "bench", "run", "--config", str(config_path), "--out",
                             str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _rows_written(out: Path) -> int:
    """Cell files: the source of truth (the tables follow when the sweep ends or a writer opens the run)."""
    return len(list(out.glob("*/*/cells/*.json")))


def test_resume_after_a_killed_sweep(tmp_path):
    config_path = tmp_path / "resume.toml"
    config_path.write_text(
        '[axes]\nmodel = ["repvgg_a0"]\nbatch_size = [1, 2]\nresolution = [32]\n'
        '[run]\ndevice = "cpu"\nnum_threads = 1\n'
        '[timing]\nmin_samples = 5\nmin_time_s = 0.05\ntimeout_s = 0.3\nwarmup_max_s = 0.2\n'
    )
    out = tmp_path / "results"
    first = _bench_run(config_path, out)
    deadline = time.monotonic() + 90
    # a pair's two cell files are written one after the other (a few ms apart): wait for both, so the kill
    # lands between pairs (the second pair is timed for at least its min_time_s after the first is written)
    while _rows_written(out) < 2:
        assert first.poll() is None, first.stdout.read()
        assert time.monotonic() < deadline, "no cell finished in time"
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    killed_rows = load(RunWriter(next(out.glob("*/*"))).run_dir)
    assert len(killed_rows) == 2, "the first pair's two rows"
    second = _bench_run(config_path, out)
    text, _ = second.communicate(timeout=120)
    assert second.returncode == 0, text
    assert text.count("already in results") == len(killed_rows)
    final = load(next(out.glob("*/*")))
    keys = [tuple(r) for r in final[list(AXES)].itertuples(index=False)]
    assert len(keys) == len(set(keys)) == 4
    assert set(final["status"]) == {"ok"}
    before = killed_rows.set_index(list(AXES))["started_at"]
    after = final.set_index(list(AXES))["started_at"]
    assert (after.loc[before.index] == before).all(), "finished cells were run again"


@pytest.mark.parametrize("message,status", [
    ("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`", "oom"),
    ("cuDNN error: CUDNN_STATUS_ALLOC_FAILED", "oom"),
    ("CUDA error: out of memory", "oom"),
    ("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED", "error"),
])
def test_library_allocation_failures_are_oom(message, status):
    """cuBLAS/cuDNN report their own failed cudaMalloc as a RuntimeError, not torch.OutOfMemoryError; a
    --max-batch probe that dies so near the limit must read as 'does not fit', not stop the search."""
    from bench.sweep.worker.failures import classify

    assert classify(RuntimeError(message)) == status


RUN_FOLDER_DATA = {".json", ".parquet", ".csv"}
"""What a run folder holds besides its lock files: data, nothing a library would load and run."""


@pytest.mark.slow
def test_a_compile_sweep_leaves_no_executable_cache_in_the_run_folder(tmp_path, monkeypatch):
    """Inductor unpickles and loads what it finds in its cache: a run folder someone hands over must not
    hold one. One conv, one deploy cell, so one compile."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCHINDUCTOR_COMPILE_THREADS", "1")  # compile in the worker: no pool to start
    net = tmp_path / "one_conv.py"
    net.write_text("from torch import nn\n\n\ndef build():\n    return nn.Conv2d(3, 4, 1)\n")
    config = _config("compiled", model=[f"{net}:build"], runtime=["compile"], form=["deploy"], resolution=[8],
                     batch_size=[1])
    summary = run_sweep(plan(from_dict(config), out=tmp_path / "out"))
    row = load(summary.run_dir).iloc[0]
    assert row["status"] == "ok" and row["compile_cache_cold"], "the run's first compile is cold"
    files = [p for p in summary.run_dir.rglob("*") if p.is_file()]
    assert [p for p in files if p.suffix not in RUN_FOLDER_DATA and p.name not in (".lock", ".sweep.lock")] == []
    cache = tmp_path / "cache" / "repbench" / "compile" / run_key(summary.run_dir)
    assert any(p.suffix == ".py" for p in cache.rglob("*")), "the run's compile cache is in the user's cache"


@pytest.mark.parametrize("runtime", INDUCTOR_RUNTIMES)
def test_every_inductor_runtime_gets_the_runs_compile_cache(tmp_path, runtime):
    """The sweep above runs `compile`; its workers' environment (local and Ray) places the cache outside
    the run folder for every runtime that compiles with Inductor (a check by the name "compile" left
    compile_frozen's workers on inductor's shared default in /tmp)."""
    from bench.sweep.protocol import group_units
    from bench.sweep.ray.sweep import worker_env
    from bench.sweep.driver.runner import _worker_env

    planned = plan(from_dict(_config("env", runtime=[runtime])), out=tmp_path)
    expected = {RUN_KEY_ENV: run_key(planned.run_dir)}
    assert _worker_env(planned, group_units(planned.cells)) == expected
    assert worker_env(planned) == expected
