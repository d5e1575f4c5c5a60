"""The GPU runtimes on a CUDA GPU: each one's opened form agrees with eager and records what decides its
numbers, ONNX Runtime runs on the provider asked for and its memory comes from NVML, and a sweep writes
gated, paired rows for every runtime this machine has. A runtime whose package or provider is missing
here is skipped with the reason the sweep would give. Run with `pytest -m gpu`."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gpu
FAST_TIMING = {"min_samples": 10, "min_time_s": 0.1, "timeout_s": 1.0, "warmup_max_s": 0.5}


def _runtime(name: str):
    from bench.sweep.worker import runtimes

    reason = runtimes.availability("cuda")[name]
    if reason:
        pytest.skip(f"{name}: {reason}")
    return runtimes.get(name)


def _net_and_input(precision: str):
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8)).eval().cuda()
    for bn in (net[1], net[4]):
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(4, 3, 32, 32, device="cuda")
    if precision == "fp16":
        return net.half(), x.half()
    return net, x


@pytest.mark.parametrize("name, precision", [
    ("compile_frozen", "fp16"), ("onnxruntime", "fp32"), ("onnxruntime", "fp16"),
    ("onnxruntime_trt", "fp16"), ("tensorrt", "fp32"), ("tensorrt", "fp16"),
])
def test_an_opened_form_agrees_with_eager_and_records_its_settings(name, precision):
    import torch

    from bench.models.agreement import TOLERANCES
    from bench.results.cell import Cell

    runtime = _runtime(name)
    cell = Cell(model="tiny", form="train", mode="infer", batch_size=4, precision=precision,
                memory_format="contiguous", runtime=name, resolution=32)
    net, x = _net_and_input(precision if runtime.harness_casts else "fp32")
    with torch.no_grad():
        reference = net(x).float().cpu()
    opened = runtime.open(net, x, cell, torch.device("cuda", 0))
    out = opened.output()
    rel = float((out - reference).abs().max() / reference.abs().max())
    assert rel <= TOLERANCES[precision], f"{name} {precision}: relative error {rel:.2e}"
    settings = dict(opened.record.settings)
    if name.startswith("onnxruntime"):
        assert settings["provider"] == (runtime.provider or "CUDAExecutionProvider")
    if name == "tensorrt":
        assert opened.record.build_ms > 0 and "max_aux_streams" in settings
        if precision == "fp32":
            assert settings["cleared"] == "TF32", "fp32 must not run in TensorRT's default TF32"
        else:
            assert settings["flags"].startswith("FP16")


def test_onnxruntime_on_cuda_rows_take_memory_from_nvml_and_name_the_provider(tmp_path):
    _runtime("onnxruntime")
    from bench.results import load
    from bench.sweep.plan.config import from_dict
    from bench.sweep.driver.runner import plan, run_sweep

    raw = {"name": "ort-gpu", "axes": {"model": ["repvgg_a0"], "resolution": [64], "batch_size": [8],
                                       "runtime": ["onnxruntime"]},
           "run": {"device": "cuda", "cell_timeout_s": 300}, "timing": FAST_TIMING}
    df = load(run_sweep(plan(from_dict(raw), out=tmp_path)).run_dir)
    assert set(df["status"]) == {"ok"}, df[["form", "status", "error"]]
    assert set(df["ort_provider"]) == {"CUDAExecutionProvider"}
    assert set(df["timing_regime"]) == {"synchronized"}
    assert df["peak_allocated_mib"].isna().all(), "torch's counters do not see ONNX Runtime's arena"
    if df["nvml_process_mib"].isna().all():
        pytest.skip("this GPU's NVML gives no per-process memory (a VM): nothing to check it against")
    assert (df["nvml_process_mib"] > 0).all()


def test_a_gpu_sweep_writes_paired_rows_for_every_runtime_this_machine_has(tmp_path):
    from bench.results import load
    from bench.sweep.worker import runtimes
    from bench.sweep.plan.config import from_dict
    from bench.sweep.driver.runner import plan, run_sweep

    names = ["eager", "compile_frozen", "onnxruntime", "onnxruntime_trt", "tensorrt"]
    raw = {"name": "ladder-gpu", "axes": {"model": ["repvgg_a0"], "resolution": [64], "batch_size": [8],
                                          "precision": ["fp16"], "runtime": names},
           "run": {"device": "cuda", "cell_timeout_s": 600}, "timing": FAST_TIMING}
    df = load(run_sweep(plan(from_dict(raw), out=tmp_path)).run_dir)
    available = runtimes.availability("cuda")
    for name in names:
        rows = df[df["runtime"] == name]
        if available[name]:
            assert set(rows["status"]) == {"skipped"} and rows["skip_reason"].str.contains(available[name][:30]).all()
        else:
            assert set(rows["status"]) == {"ok"}, rows[["form", "status", "error"]]
            assert rows["speedup_median"].notna().all()
            if name != "eager":
                assert rows["runtime_version"].notna().all() and rows["runtime_settings"].notna().all()
