"""The sweep on a CUDA GPU: CUDA regimes, reduced precisions, GPU memory columns, OOM from the real
CUDA allocator. Run with `pytest -m gpu` on a machine with an NVIDIA GPU."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.results import load
from bench.sweep.plan.config import from_dict
from bench.sweep.driver.runner import plan, run_sweep

pytestmark = pytest.mark.gpu
FAST_TIMING = {"min_samples": 10, "min_time_s": 0.1, "timeout_s": 1.0, "warmup_max_s": 0.5}


def _sweep(tmp_path, faults=(), **axes) -> pd.DataFrame:
    raw = {"name": "gpu", "axes": {"model": ["repvgg_a0"], "resolution": [64], "batch_size": [8], **axes},
           "run": {"device": "cuda", "cell_timeout_s": 300}, "timing": FAST_TIMING, "fault": list(faults)}
    return load(run_sweep(plan(from_dict(raw), out=tmp_path)).run_dir)


def test_cuda_cells_fill_the_gpu_columns(tmp_path):
    df = _sweep(tmp_path, precision=["fp32", "fp16", "bf16"], runtime=["eager", "cudagraph"])
    assert len(df) == 12
    assert set(df["status"]) == {"ok"}, df[["precision", "runtime", "form", "error"]]
    assert set(df.loc[df["runtime"] == "eager", "timing_regime"]) == {"pipelined"}
    assert set(df.loc[df["runtime"] == "cudagraph", "timing_regime"]) == {"cudagraph"}
    for column in ("peak_allocated_mib", "peak_reserved_mib", "cuda_version", "cudnn_version", "gmacs",
                   "tflops_achieved", "latency_ms_median"):
        assert df[column].notna().all(), column
    assert df.loc[df["runtime"] == "eager", "host_enqueue_ms_median"].notna().all()
    deploy = df[df["form"] == "deploy"]
    assert (deploy["max_rel_err"] <= deploy["tolerance"]).all()
    # Not deploy < train: at batch 8 and 64 px, cuDNN workspaces can outweigh the training form's extra
    # branches. What must hold: every peak holds at least the model's own fp32 weights.
    fp32 = df[df["precision"] == "fp32"]
    assert (fp32["peak_allocated_mib"] * 2**20 >= fp32["params_m"] * 1e6 * 4).all(), \
        fp32[["form", "runtime", "peak_allocated_mib", "params_m"]]


def test_cuda_oom_is_a_row(tmp_path):
    df = _sweep(tmp_path, form=["train"], batch_size=[8, 16],
                faults=[{"kind": "oom", "match": {"batch_size": 8}}])
    oom = df[df["batch_size"] == 8].iloc[0]
    assert oom["status"] == "oom" and "OutOfMemoryError" in oom["error"]
    assert df[df["batch_size"] == 16].iloc[0]["status"] == "ok"


def test_train_step_in_bf16_and_tf32(tmp_path):
    df = _sweep(tmp_path, form=["train"], mode=["train_step"], precision=["tf32", "bf16"])
    assert set(df["status"]) == {"ok"}, df["error"].tolist()
    assert (df["tf32_cudnn"] == (df["precision"] == "tf32")).all()


def test_the_prestarted_worker_is_adopted_by_the_first_gpu_slot():
    from bench.sweep.local.executor import LocalExecutor, Worker

    worker = Worker.prestart()
    try:
        slot = LocalExecutor.for_device("cuda", timeout_s=60).slots[0]
        assert worker.env == slot and worker.serves(("repvgg_a0", "eager"), slot)
    finally:
        worker.kill()


def test_the_host_pass_is_short_whatever_the_presets_sample_counts():
    import time

    import torch

    from bench.measure.timing import TimingConfig
    from bench.sweep.worker.extra_timings import host_enqueue_ms

    conv = torch.nn.Conv2d(64, 64, 3, padding=1).cuda().eval()
    x = torch.randn(8, 64, 56, 56, device="cuda")

    def call():
        with torch.inference_mode():
            return conv(x)

    paper = TimingConfig(min_samples=20, min_time_s=1.0, target_rel_ci=0.01, timeout_s=10.0, warmup_max_s=2.0)
    start = time.perf_counter()
    enqueue = host_enqueue_ms(call, torch.device("cuda", 0), paper)
    assert enqueue is not None and enqueue > 0
    assert time.perf_counter() - start < 1.0  # first call, one warm-up window, 0.2 s of samples


def test_a_max_batch_probe_loads_the_build_its_parent_saved(tmp_path):
    from bench.results.cell import Cell
    from bench.sweep.tools.maxbatch import save_form
    from bench.sweep.worker.probe import fits
    from bench.sweep.protocol import CellSpec

    cell = Cell(model="repvgg_a0", form="deploy", mode="infer", batch_size=4, precision="fp16",
                memory_format="channels_last", runtime="eager", resolution=64)
    path = save_form(cell, seed=0, folder=tmp_path)
    assert path is not None
    fits(CellSpec(cell=cell, device="cuda", seed=0, module_path=str(path)))
