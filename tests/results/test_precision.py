"""The one precision table: every precision complete, and every list of precisions read from it."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
import torch

from bench.results.precision import NAMES, PRECISIONS, QUANTIZED, TORCH_PRECISIONS, Precision


def test_every_precision_has_a_gate_tolerance_a_dtype_and_a_peak_field():
    from bench.measure.flops import Peak, peak_tflops
    from bench.measure.precision_switches import DTYPES
    from bench.models.agreement import gate_tolerance

    peak_fields = {f.name for f in dataclasses.fields(Peak)}
    for p in PRECISIONS:
        assert gate_tolerance(p.name) > 0, p.name
        assert p.peak in peak_fields, f"{p.name}: no Peak field '{p.peak}'"
        assert isinstance(peak_tflops("NVIDIA H100 80GB HBM3", p.name), float), p.name  # H100 has every math
        assert isinstance(DTYPES[p.name], torch.dtype), p.name


@pytest.mark.parametrize("gate", [{}, {"tolerance": 1e-3, "gated_in": "fp32"}, {"tolerance": 0.0}])
def test_a_precision_without_exactly_one_gate_is_refused(gate):
    with pytest.raises(ValueError, match="fp8"):
        Precision("fp8", "float8_e4m3fn", peak="fp8", **gate)


def test_every_list_of_precisions_reads_the_table():
    from bench.api import PRECISIONS as API
    from bench.export.command import ONNX_PRECISIONS, PRECISIONS as EXPORT
    from bench.measure.precision_switches import DTYPES
    from bench.models.agreement import GATED_IN, TOLERANCES
    from bench.results.schema import CHOICES
    from bench.sweep.worker.runtimes import RUNTIMES

    assert CHOICES["precision"] == NAMES and tuple(DTYPES) == NAMES
    assert API == EXPORT == RUNTIMES["eager"].precisions == TORCH_PRECISIONS
    assert set(TOLERANCES) - {"fp64"} == {p.name for p in PRECISIONS if p.gated_in is None}
    assert set(GATED_IN) == set(QUANTIZED) == {"int8"}
    assert ONNX_PRECISIONS == ("fp32", "fp16")  # what numpy and a CPU session tell apart
    assert RUNTIMES["onnxruntime"].precisions == ("fp32", "tf32", "fp16", "int8")
    assert RUNTIMES["onnxruntime_trt"].precisions == ("tf32", "fp16")
    for runtime in RUNTIMES.values():
        assert set(runtime.precisions) <= set(NAMES), runtime.name
    from bench.sweep.worker.runtimes.tensorrt import FLAGS

    assert set(FLAGS) == set(RUNTIMES["tensorrt"].precisions)  # a precision TensorRT takes has its builder flags


def test_measure_reads_nothing_of_results_but_the_precision_table():
    """The one arrow measure -> results is for the table (pure data, no torch); nothing else crosses it."""
    measure = Path(__file__).resolve().parents[2] / "bench" / "measure"
    wrong = [f"{path.name}: {node.module}" for path in sorted(measure.glob("*.py"))
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bench.results")
             and node.module != "bench.results.precision"]
    assert not wrong, wrong
