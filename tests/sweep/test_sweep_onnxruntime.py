"""The onnxruntime runtime in a sweep: skip rules checked when planning, and a real smoke-sized CPU sweep
(`--runtime eager,onnxruntime,openvino`) whose rows are gated and timed for every runtime, whose speedups
land in speedups.parquet, whose rows name the own model's file and hash, and whose report puts the runtimes
side by side (table and ladder figure). Without the openvino extra its rows are skipped with the reason."""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from bench.export import onnx_check
from bench.sweep.worker.runtimes import onnxruntime as ort_runtime_mod
from bench.sweep.plan.axes import ConfigError
from bench.sweep.plan.cells import expand
from bench.sweep.plan.config import from_dict
from bench.sweep.protocol import CellOutcome
from bench.sweep.driver.runner import make_row, plan
from tests.tiny_models import TWO_REPVGG_BLOCKS

ROOT = Path(__file__).resolve().parents[2]
OPENVINO = importlib.util.find_spec("openvino") is not None
CONFIG = textwrap.dedent("""
    name = "ort"
    [axes]
    model = ["repvgg_a0"]
    [run]
    num_threads = 1
    [timing]
    pair_block_s = 0.03
    cpu_warmup_s = 0.03
    min_time_s = 0.1
    timeout_s = 0.6
    min_samples = 5
""")


def _reasons(device_type: str, **axes) -> dict[tuple, str]:
    config = from_dict({"axes": {"model": ["repvgg_a0"], "runtime": ["onnxruntime"], **axes}})
    return {(c.form, c.mode, c.precision, c.memory_format): c.skip_reason for c in expand(config, device_type)}


def test_unsupported_onnxruntime_settings_are_rows_with_a_reason_naming_the_valid_values():
    reasons = _reasons("cuda", mode=["infer", "train_step"], precision=["fp32", "bf16"],
                       memory_format=["contiguous", "channels_last"])
    assert "valid mode: infer" in reasons[("train", "train_step", "fp32", "contiguous")]
    assert "valid memory_format: contiguous" in reasons[("train", "infer", "fp32", "channels_last")]
    assert "valid precision: fp32, tf32, fp16" in reasons[("deploy", "infer", "bf16", "contiguous")]
    assert _reasons("cpu")[("train", "infer", "fp32", "contiguous")] is None


def test_missing_extra_and_missing_cuda_provider_are_skip_reasons(monkeypatch):
    pytest.importorskip("onnxruntime")
    import onnxruntime

    ort_runtime_mod._unavailable.cache_clear()
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        assert "CUDAExecutionProvider is not available" in _reasons("cuda")[("train", "infer", "fp32", "contiguous")]
    monkeypatch.setattr(onnx_check, "ONNX_MODULES", ("onnx", "no_such_onnxruntime_zz"))
    ort_runtime_mod._unavailable.cache_clear()
    try:
        reason = _reasons("cpu")[("deploy", "infer", "fp32", "contiguous")]
    finally:
        ort_runtime_mod._unavailable.cache_clear()
    assert "no_such_onnxruntime_zz" in reason and 'pip install -e ".[onnx]"' in reason


def test_unknown_runtime_lists_every_runtime():
    with pytest.raises(ConfigError, match=r"\(did you mean 'tensorrt'\?\); known: eager, cudagraph, compile, "
                                          "compile_frozen, onnxruntime, onnxruntime_trt, openvino, tensorrt"):
        from_dict({"axes": {"model": ["repvgg_a0"], "runtime": ["tensorrt10"]}})


def test_registered_models_record_the_registry_as_their_source(tmp_path):
    p = plan(from_dict({"axes": {"model": ["repvgg_a0"]}, "run": {"device": "cpu"}}), out=tmp_path)
    row = make_row(p, p.cells[0], CellOutcome(status="skipped"), None, None)
    assert (row.model_source, row.model_source_sha256) == ("registry", None)


@pytest.fixture(scope="module")
def ort_run(tmp_path_factory) -> tuple[Path, Path, str]:
    pytest.importorskip("onnxruntime")
    base = tmp_path_factory.mktemp("ort")
    net, config = base / "tiny_net.py", base / "ort.toml"
    net.write_text(TWO_REPVGG_BLOCKS)
    config.write_text(CONFIG)
    spec = f"{net}:build:width=8"
    argv = ["run", "--config", str(config), "--models", spec, "--runtime", "eager,onnxruntime,openvino",
            "--batch", "2", "--resolution", "32", "--device", "cpu", "--out", str(base / "out")]
    done = subprocess.run([sys.executable, "-m", "bench", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return next(p for p in (base / "out").glob("*/*") if p.is_dir()), net, spec


def test_eager_and_onnxruntime_rows_are_gated_timed_and_paired(ort_run):
    from bench.results import load

    run_dir, net, spec = ort_run
    df = load(run_dir)
    openvino = df[df["runtime"] == "openvino"]
    if not OPENVINO:
        assert set(openvino["status"]) == {"skipped"} and openvino["skip_reason"].str.contains("openvino").all()
    df = df[df["runtime"] != "openvino"]
    assert sorted(zip(df["runtime"], df["form"])) == [("eager", "deploy"), ("eager", "train"),
                                                      ("onnxruntime", "deploy"), ("onnxruntime", "train")]
    assert (df["status"] == "ok").all(), df[["runtime", "form", "status", "error"]]
    assert (df["latency_ms_median"] > 0).all() and (df["n_samples"] >= 5).all()
    ort = df[df["runtime"] == "onnxruntime"]
    assert (ort["max_rel_err"] <= ort["tolerance"]).all(), "every session is gated against PyTorch"
    assert set(ort["ort_provider"]) == {"CPUExecutionProvider"} and ort["ort_version"].notna().all()
    assert set(ort["ort_graph_optimization_level"]) == {"all"}
    assert (ort["ort_intra_op_threads"] == ort["num_threads"]).all() and set(ort["num_threads"]) == {1}
    assert set(ort["timing_regime"]) == {"cpu"}
    assert df[df["runtime"] == "eager"]["ort_provider"].isna().all()
    assert int(ort[ort["form"] == "deploy"]["batchnorms_deploy"].iloc[0]) == 0
    assert ort["runtime_version"].str.startswith("onnxruntime ").all() and ort["runtime_build_ms"].gt(0).all()
    convs = ort.set_index("form")["runtime_convs"]
    assert convs["deploy"] == 2 and convs["train"] >= 4, "two RepVGG blocks: one conv each deployed, 3x3 + 1x1 trained"
    speedups = pd.read_parquet(run_dir / "speedups.parquet")
    speedups = speedups[speedups["runtime"] != "openvino"]
    assert sorted(speedups["runtime"]) == ["eager", "onnxruntime"] and (speedups["status"] == "ok").all()
    for _, s in speedups.iterrows():
        assert s["speedup_ci_low"] <= s["speedup_median"] <= s["speedup_ci_high"] and s["n_blocks"] >= 4


def test_own_model_rows_record_the_file_and_its_hash(ort_run):
    from bench.results import load

    run_dir, net, spec = ort_run
    df = load(run_dir)
    assert set(df["model_source"]) == {str(net.resolve())}
    assert set(df["model_source_sha256"]) == {hashlib.sha256(net.read_bytes()).hexdigest()}


def test_report_shows_the_runtimes_side_by_side_with_the_runs_speedups(ort_run, tmp_path):
    from bench.report import write_report
    from bench.results import load

    run_dir, net, spec = ort_run
    output = write_report(load(run_dir), tmp_path)
    table = pd.read_csv(output.tables["runtimes"])
    assert len(table) == 1 and table["model"].iloc[0] == spec
    speedups = pd.read_parquet(run_dir / "speedups.parquet").set_index("runtime")
    for runtime in ("eager", "onnxruntime"):
        assert table[f"{runtime}_speedup"].iloc[0] == pytest.approx(speedups.loc[runtime, "speedup_median"])
        assert table[f"{runtime}_throughput_deploy"].iloc[0] > 0
    assert list(table.columns).index("eager_speedup") < list(table.columns).index("onnxruntime_speedup")
    assert ("openvino_speedup" in table.columns) == OPENVINO
    assert "## Runtimes side by side" in output.report_md.read_text()
    assert [p.suffix for p in output.rendered.paths["runtime_ladder"]] == [".png", ".svg"]


def test_openvino_rows_are_gated_paired_and_fp32_pinned(ort_run):
    pytest.importorskip("openvino")
    from bench.results import load

    df = load(ort_run[0])
    ov = df[df["runtime"] == "openvino"]
    assert set(ov["status"]) == {"ok"} and (ov["max_rel_err"] <= ov["tolerance"]).all()
    assert ov["runtime_settings"].str.contains("INFERENCE_PRECISION_HINT=f32").all()
    assert ov["speedup_median"].notna().all() and set(ov["timing_regime"]) == {"cpu"}
