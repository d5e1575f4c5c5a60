"""ONNX Runtime static quantization: deterministic calibration (same seed, same scales), a real int8
graph, and the seeded input sets it calibrates and is measured on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bench.quant.calibration import InputSet, calibration_set, evaluation_set
from bench.reparam import RepVGGBlock
from tests.conftest import randomize_

SHAPE = (4, 3, 32, 32)


def test_input_sets_are_seeded_whole_batches():
    one = InputSet(SHAPE, samples=6, seed=3)
    assert one.n_batches == 2 and one.drawn == 8
    first, again = one.batches(), one.batches()
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert first[0].shape == SHAPE and first[0].dtype == np.float32
    assert not np.array_equal(first[0], InputSet(SHAPE, samples=6, seed=4).batches()[0])
    assert not np.array_equal(calibration_set(SHAPE, 0).batches()[0], evaluation_set(SHAPE, 0).batches()[0])
    with pytest.raises(ValueError, match="at least one sample"):
        InputSet(SHAPE, samples=0, seed=0)


@pytest.fixture(scope="module")
def fp32_graph() -> bytes:
    pytest.importorskip("onnxruntime")
    from bench.export.onnx_check import export_onnx

    torch.manual_seed(0)
    net = nn.Sequential(RepVGGBlock(3, 8, stride=2), RepVGGBlock(8, 8), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 10))
    return export_onnx(randomize_(net).eval(), torch.randn(SHAPE)).data


def _quantize(graph: bytes, seed: int):
    from bench.quant.onnx_static import quantize_onnx

    calibration = calibration_set(SHAPE, seed, samples=8)
    return quantize_onnx(graph, calibration.batches(), calibration.seed)


def test_calibration_is_deterministic_same_seed_same_scales(fp32_graph):
    from bench.quant.onnx_static import quantization_params

    first, second, other = (quantization_params(_quantize(fp32_graph, seed).data) for seed in (0, 0, 1))
    assert first and first.keys() == second.keys()
    assert all(np.array_equal(first[k], second[k]) for k in first)
    activation_scales = [k for k in first if first[k].ndim == 0 and first[k].dtype == np.float32]
    assert any(not np.array_equal(first[k], other[k]) for k in activation_scales)  # the seed matters


def test_the_quantized_graph_runs_int8_close_to_fp32(fp32_graph):
    import onnx
    import onnxruntime as ort

    from bench.quant.error import quant_error

    quantized = _quantize(fp32_graph, 0)
    ops = {node.op_type for node in onnx.load_from_string(quantized.data).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    assert quantized.scheme.calibration == "minmax" and quantized.scheme.calibration_samples == 8
    x = evaluation_set(SHAPE, 0).batches()[0]
    outputs = []
    for data in (fp32_graph, quantized.data):
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        outputs.append(torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x})[0]))
    error = quant_error(*outputs)
    assert 10.0 < error.sqnr_db < 60.0  # int8: about 6 dB per bit, never exact
    assert error.rel_err > 0


def test_the_int8_sessions_build_time_counts_the_export_and_the_quantization():
    """The int8 session's `build_ms` (a row's `runtime_build_ms`) is what a deployment pays before its
    first call: the export, the quantization and the session; it used to count the session only."""
    pytest.importorskip("onnxruntime")
    from bench.quant.ort import open_int8

    torch.manual_seed(0)
    net = randomize_(nn.Sequential(RepVGGBlock(3, 8, stride=2), RepVGGBlock(8, 8))).eval()
    opened = open_int8(net, torch.randn(SHAPE), torch.device("cpu"), num_threads=1, seed=0)
    assert opened.int8.record.build_ms > opened.fp32.record.build_ms  # export + quantization + session
