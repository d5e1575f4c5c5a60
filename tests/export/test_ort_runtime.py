"""The onnxruntime runtime's callable: runs the exported graph, matches PyTorch, and is timed for real."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.export import onnx_check, ort_runtime
from bench.measure.timing import TimingConfig, measure_latency
from bench.models.gate import compare_outputs

pytest.importorskip("onnxruntime")


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1)).eval()


def test_cpu_callable_matches_pytorch_and_records_its_settings():
    model, x = _model(), torch.randn(2, 3, 16, 16)
    call, record = ort_runtime.ort_callable(model, x, torch.device("cpu"), num_threads=1, level="basic")
    out = torch.from_numpy(call())
    with torch.inference_mode():
        assert compare_outputs(model(x), out, "fp32").passed
    assert record.provider == "CPUExecutionProvider" and record.graph_optimization_level == "basic"
    assert record.intra_op_threads == 1 and record.regime == "cpu" and record.ort_version
    stats = measure_latency(call, "cpu", "cpu", TimingConfig(min_samples=5, min_time_s=0.02, timeout_s=0.5,
                                                             cpu_warmup_s=0.02))
    assert stats.n >= 5 and stats.median_ms > 0


def test_skip_reasons_name_the_extra_and_the_provider(monkeypatch):
    assert ort_runtime.skip_reason(torch.device("cpu")) is None
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        assert "CUDAExecutionProvider is not available" in ort_runtime.skip_reason(torch.device("cuda"))
    monkeypatch.setattr(onnx_check, "ONNX_MODULES", ("onnx", "no_such_ort_zz"))
    assert "'onnx' extra" in ort_runtime.skip_reason(torch.device("cpu"))
    with pytest.raises(RuntimeError, match="no_such_ort_zz"):
        ort_runtime.ort_callable(_model(), torch.randn(1, 3, 8, 8), torch.device("cpu"), 1)


def test_unknown_graph_level_is_refused():
    with pytest.raises(ValueError, match="level 'max' is unknown; known: disable, basic, extended, all"):
        ort_runtime.ort_callable(_model(), torch.randn(1, 3, 8, 8), torch.device("cpu"), 1, level="max")
