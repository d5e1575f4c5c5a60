"""int8 in a sweep: skip rules where no runtime quantizes, and a real tiny CPU sweep whose int8 pair is
gated in fp32, carries the int8 error columns and both speedups, and whose report draws the figure."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from bench.sweep.plan.cells import expand
from bench.sweep.plan.config import from_dict
from tests.tiny_models import TWO_REPVGG_BLOCKS

ROOT = Path(__file__).resolve().parents[2]
CONFIG = textwrap.dedent("""
    name = "int8"
    [axes]
    model = ["repvgg_a0"]
    [run]
    num_threads = 1
    [timing]
    pair_block_s = 0.03
    cpu_warmup_s = 0.03
    min_time_s = 0.1
    timeout_s = 0.5
    min_samples = 5
""")


def _reasons(device_type: str, runtime: list[str]) -> dict[tuple, str]:
    config = from_dict({"axes": {"model": ["repvgg_a0"], "runtime": runtime, "precision": ["int8", "fp16"]}})
    return {(c.runtime, c.precision, c.form): c.skip_reason for c in expand(config, device_type)}


def test_int8_runs_where_a_runtime_quantizes_and_says_why_elsewhere():
    cpu = _reasons("cpu", ["eager", "compile", "openvino", "onnxruntime"])
    assert "valid runtime for int8: onnxruntime" in cpu[("eager", "int8", "deploy")]
    assert "valid runtime for int8: onnxruntime" in cpu[("compile", "int8", "train")]
    assert "bench quant --quantizer openvino" in cpu[("openvino", "int8", "train")]
    assert "fp16 not timed on CPU" in cpu[("onnxruntime", "fp16", "train")]
    pytest.importorskip("onnxruntime")
    assert cpu[("onnxruntime", "int8", "train")] is None
    cuda = _reasons("cuda", ["onnxruntime"])
    assert "int8 on CUDA needs TensorRT" in cuda[("onnxruntime", "int8", "deploy")]


@pytest.fixture(scope="module")
def int8_run(tmp_path_factory) -> Path:
    pytest.importorskip("onnxruntime")
    base = tmp_path_factory.mktemp("int8")
    net, config = base / "tiny_net.py", base / "int8.toml"
    net.write_text(TWO_REPVGG_BLOCKS)
    config.write_text(CONFIG)
    argv = ["run", "--config", str(config), "--models", f"{net}:build:width=8", "--runtime", "onnxruntime",
            "--precision", "int8", "--batch", "4", "--resolution", "32", "--device", "cpu", "--out",
            str(base / "out")]
    done = subprocess.run([sys.executable, "-m", "bench", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return next(p for p in (base / "out").glob("*/*") if p.is_dir())


def test_int8_pair_is_gated_in_fp32_and_carries_error_and_speed_columns(int8_run):
    from bench.results import load

    df = load(int8_run)
    assert (df["status"] == "ok").all(), df[["form", "status", "error"]]
    assert set(df["precision"]) == {"int8"} and (df["tolerance"] == 1e-4).all()  # the fp32 gate's tolerance
    assert (df["max_rel_err"] < 1e-4).all()
    for column in ("int8_sqnr_db_vs_fp32", "int8_sqnr_db_vs_train_fp32", "int8_rel_err_vs_fp32",
                   "int8_rel_err_vs_train_fp32", "int8_top1_agreement_vs_fp32", "int8_speedup_vs_fp32_median",
                   "fp32_latency_ms_median"):
        assert df[column].map(math.isfinite).all(), column
    assert ((df["int8_sqnr_db_vs_fp32"] > 5) & (df["int8_sqnr_db_vs_fp32"] < 80)).all()  # quantized, not exact
    assert df["int8_top1_agreement_vs_train_fp32"].between(0, 1).all()
    assert (df["int8_speedup_vs_fp32_ci_low"] <= df["int8_speedup_vs_fp32_median"]).all()
    assert set(df["quant_calibration"]) == {"minmax"} and set(df["quant_calibration_samples"]) == {32}
    assert set(df["quant_eval_samples"]) == {64} and df["quant_scheme"].str.contains("QDQ").all()
    assert df["runtime_version"].str.startswith("onnxruntime ").all() and (df["runtime_build_ms"] > 0).all()
    assert (df["runtime_convs"] > 0).all() and set(df["ort_provider"]) == {"CPUExecutionProvider"}
    pair = pd.read_parquet(int8_run / "speedups.parquet").iloc[0]
    assert pair["status"] == "ok" and pair["speedup_ci_low"] <= pair["speedup_median"] <= pair["speedup_ci_high"]
    deploy = df[df["form"] == "deploy"].iloc[0]
    assert pair["int8_sqnr_db_deploy"] == pytest.approx(deploy["int8_sqnr_db_vs_train_fp32"])
    assert pair["int8_speedup_vs_fp32_deploy"] == pytest.approx(deploy["int8_speedup_vs_fp32_median"])


def test_report_draws_the_int8_figure_and_table(int8_run, tmp_path):
    from bench.report import write_report
    from bench.results import load

    output = write_report(load(int8_run), tmp_path)
    assert any(p.name == "int8_quantization.png" for p in output.rendered.paths["int8_quantization"])
    table = pd.read_csv(output.tables["int8"])
    assert len(table) == 1 and {"sqnr_db_train", "sqnr_db_deploy", "deploy_vs_train"} <= set(table.columns)
    assert "not ImageNet accuracy" in output.report_md.read_text()
