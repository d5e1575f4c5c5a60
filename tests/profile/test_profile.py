"""`bench profile`: real torch.profiler traces of RepVGG-A0 on the CPU, counted per forward.

Expected counts follow from the architecture (RepVGG paper, Table 2): A0 has 1 + (2 + 4 + 14 + 1) = 22
blocks; the first block of each of the 5 stages has stride 2 (or a channel change) and so no identity
branch. Training form per forward: 2 convs per block (3x3 and 1x1), 2 BNs per block plus 1 per identity
branch, (branches - 1) additions per block, 1 ReLU per block. Deploy form: 1 conv (with bias) and 1 ReLU
per block, no BN, no addition. Both end in average pool, flatten, linear.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench.cli import main
from bench.measure.ops import kernel_name_category, launches

BLOCKS = 1 + sum((2, 4, 14, 1))
STAGES = 5
IDENTITY = BLOCKS - STAGES
TINY = ["--model", "repvgg_a0", "--batch", "2", "--resolution", "32", "--device", "cpu",
        "--wait", "0", "--warmup", "1", "--active", "2"]


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    out = tmp_path_factory.mktemp("results")
    assert main(["profile", *TINY, "--compare-forms", "--out", str(out)]) == 0
    files = list(out.glob("*/traces/*/kernel_counts.csv"))
    assert len(files) == 1
    return out, pd.read_csv(files[0]).set_index("category")


def test_deploy_form_has_no_batchnorm_and_one_conv_per_block(compared):
    _, counts = compared
    assert counts.loc["convolution", "count_per_forward_train"] == 2 * BLOCKS == 44
    assert counts.loc["convolution", "count_per_forward_deploy"] == BLOCKS == 22
    assert counts.loc["batchnorm", "count_per_forward_train"] == 2 * BLOCKS + IDENTITY == 61
    assert counts.loc["batchnorm", "count_per_forward_deploy"] == 0


def test_branch_additions_disappear(compared):
    _, counts = compared
    additions = 2 * IDENTITY + (BLOCKS - IDENTITY)
    assert counts.loc["elementwise", "count_per_forward_train"] == BLOCKS + additions
    assert counts.loc["elementwise", "count_per_forward_deploy"] == BLOCKS
    other = counts.loc["other"]
    assert other["count_per_forward_train"] == other["count_per_forward_deploy"] == 3
    assert counts.loc["all", "count_per_forward_deploy"] < counts.loc["all", "count_per_forward_train"]


def test_counts_match_the_modules_of_the_built_model(compared):
    from bench.models import create
    from bench.reparam import to_deploy

    _, counts = compared
    train = create("repvgg_a0").eval()
    deploy = to_deploy(train)
    for model, form in ((train, "train"), (deploy, "deploy")):
        convs = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
        bns = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        assert counts.loc["convolution", f"count_per_forward_{form}"] == convs
        assert counts.loc["batchnorm", f"count_per_forward_{form}"] == bns


def test_traces_and_summaries_are_written(compared):
    out, _ = compared
    for form in ("train", "deploy"):
        folders = list(out.glob(f"*/traces/repvgg_a0-{form}-b2-fp32-r32"))
        assert len(folders) == 1
        traces = list(folders[0].glob("*.pt.trace.json"))
        assert len(traces) == 1
        events = json.loads(traces[0].read_text())["traceEvents"]
        assert any(e.get("name") == "aten::conv2d" for e in events)
        summary = pd.read_csv(folders[0] / "kernel_summary.csv")
        assert summary["time_ms_per_forward"].is_monotonic_decreasing
        assert "## By category" in (folders[0] / "kernel_summary.md").read_text()
    assert list(out.glob("*/traces/*-train-vs-deploy-*/kernel_counts.md"))


def test_time_split_covers_the_total(compared):
    _, counts = compared
    for form in ("train", "deploy"):
        parts = counts.drop(index="all")[f"time_ms_per_forward_{form}"].sum()
        assert parts == pytest.approx(counts.loc["all", f"time_ms_per_forward_{form}"])


def test_unknown_model_names_the_known_ones(capsys, tmp_path):
    assert main(["profile", "--model", "repvgg_a9", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "'repvgg_a9' is unknown (did you mean 'repvgg_a2', 'repvgg_a1', 'repvgg_a0'?); known: " in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_a_gpu_is_an_error_not_a_cpu_number(capsys, tmp_path):
    assert main(["profile", "--model", "repvgg_a0", "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "cuda" in capsys.readouterr().err.lower()
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name,category", [
    ("sm80_xmma_fprop_implicit_gemm_tf32f32_tf32f32_f32_nhwckrsc_nchw_tilesize128x128x16", "convolution"),
    ("void cudnn::bn_fw_inf_1C11_kernel_NCHW<float, float, true, 1>(float, float, cudnnTensorStruct)",
     "batchnorm"),
    ("void at::native::batch_norm_transform_input_kernel<float, float, float, int>", "batchnorm"),
    ("void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>>", "elementwise"),
    ("Memcpy HtoD (Pageable -> Device)", "other"),
    ("sm90_xmma_gemm_f32f32_f32f32_f32_tn_n_tilesize64x32x8_stage3_warpsize1x2x1_ffma_aligna4_alignc4_execute_"
     "kernel__5x_cublas", "other"),
])
def test_gpu_kernel_names_are_categorized(name, category):
    assert kernel_name_category(name) == category


def test_gpu_launches_leave_out_record_function_ranges():
    """Kineto mirrors `record_function("forward")` on the GPU timeline as a device-type event spanning the
    whole forward (gpu_user_annotation); it is not a launch. Built from torch's own FunctionEvent class,
    as `prof.events()` returns them; the GPU test checks a real trace."""
    from torch.autograd import DeviceType
    from torch.autograd.profiler_util import FunctionEvent

    name = "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>>"
    op = FunctionEvent(id=1, name="aten::add", thread=0, start_us=0, end_us=10)
    kernel = FunctionEvent(id=2, name=name, thread=0, start_us=20, end_us=23, device_type=DeviceType.CUDA)
    op.append_kernel(name, 0, 3)
    annotation = FunctionEvent(id=3, name="forward", thread=0, start_us=0, end_us=30,
                               device_type=DeviceType.CUDA, is_user_annotation=True)
    assert launches([op, kernel, annotation], on_gpu=True) == [(name, "elementwise", 0.003)]


@pytest.mark.gpu
def test_gpu_profile_counts_kernels_per_forward(tmp_path):
    args = ["profile", "--model", "repvgg_a0", "--batch", "8", "--device", "cuda", "--compare-forms",
            "--out", str(tmp_path)]
    assert main(args) == 0
    counts = pd.read_csv(next(tmp_path.glob("*/traces/*/kernel_counts.csv"))).set_index("category")
    assert counts.loc["all", "unit"] == "CUDA kernels"
    assert counts.loc["batchnorm", "count_per_forward_deploy"] == 0
    assert counts.loc["batchnorm", "count_per_forward_train"] >= 2 * BLOCKS + IDENTITY
    assert counts.loc["convolution", "count_per_forward_deploy"] >= BLOCKS
    assert counts.loc["all", "count_per_forward_deploy"] < counts.loc["all", "count_per_forward_train"]
    assert list(tmp_path.glob("*/traces/repvgg_a0-deploy-b8-fp32/*.pt.trace.json"))
    summary = pd.read_csv(next(tmp_path.glob("*/traces/repvgg_a0-deploy-b8-fp32/kernel_summary.csv")))
    assert not summary["name"].isin(["forward", "ProfilerStep*"]).any(), summary["name"].tolist()


def test_cpu_profiles_pin_one_thread_by_default_and_record_it(compared):
    before = torch.get_num_threads()
    table = pd.read_csv(next(compared[0].glob("*/traces/*/kernel_counts.csv")))
    assert set(table["num_threads"]) == {1}
    summary = next(compared[0].glob("*/traces/*-train-*/kernel_summary.md")).read_text(encoding="utf-8")
    assert "1 torch CPU thread(s)" in summary
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("flag, value", [("--wait", "-1"), ("--warmup", "-2"), ("--threads", "0"), ("--top", "0")])
def test_bad_schedule_and_thread_values_are_refused(flag, value, capsys, tmp_path):
    assert main(["profile", "--model", "repvgg_a0", flag, value, "--out", str(tmp_path)]) == 2
    assert f"{flag} must be" in capsys.readouterr().err
