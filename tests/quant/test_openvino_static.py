"""OpenVINO's NNCF quantization, where openvino and nncf are installed: the fp32 model passes the fp32
gate (bf16 execution switched off), the int8 model is quantized, and the same seed gives the same model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.reparam import RepVGGBlock
from tests.conftest import randomize_

SHAPE = (4, 3, 32, 32)


def test_openvino_int8_is_gated_in_fp32_and_deterministic():
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    pytest.importorskip("onnxruntime")  # the ONNX export needs the onnx extra
    from bench.models.gate import compare_outputs
    from bench.quant.calibration import evaluation_set
    from bench.quant.error import quant_error
    from bench.quant.openvino_static import open_int8

    torch.manual_seed(0)
    net = randomize_(nn.Sequential(RepVGGBlock(3, 8, stride=2), RepVGGBlock(8, 8), nn.AdaptiveAvgPool2d(1),
                                   nn.Flatten(), nn.Linear(8, 10))).eval()
    x = torch.randn(SHAPE)
    first, second = open_int8(net, x, 1, seed=0), open_int8(net, x, 1, seed=0)
    with torch.inference_mode():
        assert compare_outputs(net(x), first.fp32_output(), "fp32").passed
    batch = evaluation_set(SHAPE, 0).batches()[0]
    int8 = torch.from_numpy(first.form.int8_run(batch))
    assert torch.equal(int8, torch.from_numpy(second.form.int8_run(batch)))  # same seed, same model
    error = quant_error(torch.from_numpy(first.form.fp32_run(batch)), int8)
    assert 10.0 < error.sqnr_db < 60.0
    assert first.form.scheme.calibration_samples == 32 and "nncf" in first.form.scheme.tool
