"""The runtime registry (`bench.sweep.worker.runtimes`): its names are the axis' choices, each runtime's rules are
skip reasons naming the valid values, ONNX Runtime's silent provider fallback is refused, Inductor's
freezing folds conv+BN (and the row can tell), a worker's many compiled variants never fall back to eager
silently, OpenVINO runs fp32 as fp32, and `--runtime list` says what can run here."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.results.schema import AXIS_SPECS
from bench.sweep.worker import runtimes
from bench.results.cell import Cell
from bench.sweep.plan.cells import skip_reason

CPU = torch.device("cpu")


def _cell(**axes) -> Cell:
    base = dict(model="tiny", form="train", mode="infer", batch_size=2, precision="fp32",
                memory_format="contiguous", runtime="eager", resolution=16)
    return Cell(**{**base, **axes})


def _conv_bn() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()).eval()
    net[1].running_mean.normal_()
    net[1].running_var.uniform_(0.5, 2.0)
    return net


def test_the_registry_holds_exactly_the_runtime_axis_choices():
    choices = next(a.choices for a in AXIS_SPECS if a.name == "runtime")
    assert set(runtimes.RUNTIMES) == set(choices)
    assert list(runtimes.availability("cpu")) == list(choices)


@pytest.mark.parametrize("axes, device, expected", [
    (dict(runtime="compile_frozen", mode="train_step"), "cpu", "valid mode: infer"),
    (dict(runtime="openvino"), "cuda", "runs on CPU only"),
    (dict(runtime="tensorrt"), "cpu", "not timed on CPU"),
    (dict(runtime="onnxruntime_trt", precision="fp32"), "cuda", "valid precision: tf32, fp16"),
    (dict(runtime="tensorrt", memory_format="channels_last"), "cuda", "valid memory_format: contiguous"),
])
def test_what_a_runtime_cannot_run_is_a_skip_reason_naming_the_valid_values(axes, device, expected):
    assert expected in skip_reason(_cell(**axes), device)


def test_a_session_that_fell_back_from_the_provider_asked_for_is_refused():
    """ONNX Runtime only warns when asked for a provider its build lacks, and runs on the CPU."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from bench.export import ort_runtime

    if "CUDAExecutionProvider" in ort_runtime._available():
        pytest.skip("this onnxruntime build has the CUDA provider: no fallback to provoke")
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    chain = ort_runtime.provider_chain("CUDAExecutionProvider", torch.device("cuda", 0), tf32=False)
    with pytest.warns(UserWarning), pytest.raises(ort_runtime.ProviderFallback,
                                                  match="asked ONNX Runtime for CUDAExecutionProvider"):
        ort_runtime.open_checked(data, chain, num_threads=1, level="all")


def test_freezing_folds_conv_bn_and_the_record_says_so(monkeypatch):
    """Unfrozen, the BatchNorm's statistics are read at run time (one sqrt); frozen, it is folded into
    the convolution. Both compiled outputs match eager. (Inductor's FX-graph cache is off: a graph it
    serves is not lowered again, so it would not be counted.)"""
    import torch._inductor.config as inductor_config

    from bench.sweep.worker.runtimes.compiled import _graph_census

    if _graph_census() is None:
        pytest.skip("this torch has no Inductor custom graph passes to count with")
    monkeypatch.setattr(inductor_config, "fx_graph_cache", False)
    net, x = _conv_bn(), torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        reference = net(x)
    records = {}
    for name in ("compile", "compile_frozen"):
        opened = runtimes.get(name).open(net, x.clone(), _cell(runtime=name), CPU, share=False)
        torch.testing.assert_close(opened.output(), reference, rtol=1e-4, atol=1e-5)
        records[name] = opened.record
    assert (records["compile"].convs, records["compile"].batchnorms) == (1, 1)
    assert (records["compile_frozen"].convs, records["compile_frozen"].batchnorms) == (1, 0)
    settings = dict(records["compile_frozen"].settings)
    assert settings["freezing"] is True and settings["binary_folding"] > 0


def test_a_worker_compiling_many_variants_never_runs_one_in_eager_silently(monkeypatch):
    """Dynamo keeps 8 compiled variants of a code object by default and then runs it in eager with only
    a log line; a compile worker holds more (forms x precisions x formats x batches)."""
    from torch._dynamo.utils import counters

    runtime = runtimes.get("compile")
    monkeypatch.setattr(runtime, "backend", "eager")  # Dynamo's cache is the subject, not Inductor
    monkeypatch.setattr(runtime, "shared", {})
    torch._dynamo.reset()
    counters.clear()
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).eval()
    variants = [(dtype, fmt, batch) for dtype in (torch.float32, torch.bfloat16, torch.float64)
                for fmt in (torch.contiguous_format, torch.channels_last) for batch in (1, 2)]
    for dtype, fmt, batch in variants:
        module = net.to(dtype).to(memory_format=fmt)
        x = torch.randn(batch, 3, 8, 8, dtype=dtype).contiguous(memory_format=fmt)
        cell = _cell(runtime="compile", batch_size=batch, precision=str(dtype), memory_format=str(fmt))
        runtime.open(module, x, cell, CPU)
    torch._dynamo.reset()
    assert counters["stats"]["unique_graphs"] == len(variants) > 8


def test_openvino_runs_fp32_as_fp32_with_its_settings_read_back():
    pytest.importorskip("openvino")
    net, x = _conv_bn(), torch.randn(2, 3, 16, 16)
    opened = runtimes.get("openvino").open(net, x, _cell(runtime="openvino"), CPU)
    with torch.no_grad():
        torch.testing.assert_close(opened.output(), net(x), rtol=1e-4, atol=1e-5)
    settings = dict(opened.record.settings)
    assert settings["INFERENCE_PRECISION_HINT"] == "f32" and settings["PERFORMANCE_HINT"] == "LATENCY"
    assert int(settings["INFERENCE_NUM_THREADS"]) == torch.get_num_threads()
    assert opened.record.convs == 1 and opened.record.version.startswith("openvino ")


def test_runtime_list_names_every_runtime_and_why_it_cannot_run(capsys):
    from bench.sweep.driver.command import print_runtimes

    assert print_runtimes() == 0
    out = capsys.readouterr().out
    for name in runtimes.RUNTIMES:
        assert f"\n{name}: " in f"\n{out}"
    assert "cpu: cannot run here: runs on CUDA only" in out  # tensorrt, cudagraph, onnxruntime_trt
    if not torch.cuda.is_available():
        assert "cuda: cannot run here: no CUDA GPU visible" in out


def test_inference_units_share_one_dynamic_batch_compile_and_say_so(monkeypatch):
    """One compile per graph-deciding key, not per batch: batch 1 is static (Dynamo specialises it), other
    batches reuse the dynamic-batch graph, and the record says which happened. Dynamo is reset as a unit
    of another compile group starts (nothing is then shared), never inside a group."""
    runtime = runtimes.get("compile")
    monkeypatch.setattr(runtime, "backend", "eager")  # the sharing is the subject, not Inductor
    monkeypatch.setattr(runtime, "shared", {})
    monkeypatch.setattr(runtime, "group", None)
    net = _conv_bn()
    seen = []
    for batch in (4, 6, 1, 8):
        x = torch.randn(batch, 3, 16, 16)
        cell = _cell(runtime="compile", batch_size=batch)
        runtime.begin_unit([cell])
        opened = runtime.open(net, x, cell, CPU)
        with torch.no_grad():
            torch.testing.assert_close(opened.output(), net(x))
        settings = dict(opened.record.settings)
        seen.append((settings["batch"], settings["shared"], opened.record.graphs))
        assert opened.record.fields()["compile_graphs"] == opened.record.graphs
    torch._dynamo.reset()
    assert seen == [("dynamic", False, 1), ("dynamic", True, 0), ("static", False, 1), ("dynamic", False, 1)]
