"""ONNX Runtime static quantization of an exported fp32 graph: QDQ, per-channel int8 weights, MinMax.

The recipe is ONNX Runtime's documented first choice for CPUs ("S8S8 with QDQ is the default setting and
balances performance and accuracy"; onnxruntime.ai/docs/performance/model-optimizations/quantization):
- `quant_pre_process` first (symbolic shape inference and basic graph optimisation), as the
  quantization tool asks;
- `quantize_static` with `QuantFormat.QDQ`: the float graph gains QuantizeLinear/DequantizeLinear pairs,
  which the session's graph optimiser fuses into int8 kernels (QLinearConv and friends);
- weights int8, symmetric, one scale per output channel (`per_channel=True`, the sweep's setting), or
  one per tensor (`per_channel=False`, `bench quant --weights per-tensor`): a per-tensor scale must
  cover the whole kernel's range, the quantity a re-parameterized kernel widens (`bench quant` prints the
  widest deploy kernel beside the errors);
- activations int8, asymmetric, one scale per tensor, from MinMax calibration (`CalibrationMethod.MinMax`:
  the min and max each tensor reaches over the calibration set) on `bench.quant.calibration`'s seeded set.
Ops the tool does not quantize (a training form's standalone BatchNorms, ReduceMean) stay in float between
a DequantizeLinear and a QuantizeLinear: that is how the training form deploys under this tool.

The tool logs its advice on the root logger; that is silenced for the call only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from bench.quant.scheme import QuantScheme

CALIBRATION = "minmax"
FORMAT = "QDQ"
WEIGHTS = {True: "int8 symmetric per-channel", False: "int8 symmetric per-tensor"}
"""By `per_channel`."""
ACTIVATIONS = "int8 asymmetric per-tensor"


def skip_reason() -> Optional[str]:
    """Why ONNX Runtime cannot quantize here, or None."""
    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
        return "int8 through ONNX Runtime needs onnx and onnxruntime: install the 'onnx' extra (pip install -e \".[onnx]\")"
    return None


@dataclass(frozen=True)
class QuantizedGraph:
    """The QDQ graph's bytes and how it was made."""

    data: bytes
    scheme: QuantScheme


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(saved)


def _scheme(samples: int, seed: int, per_channel: bool) -> QuantScheme:
    import onnxruntime

    return QuantScheme(tool=f"onnxruntime {onnxruntime.__version__} quantize_static", format=FORMAT,
                       weights=WEIGHTS[per_channel], activations=ACTIVATIONS, calibration=CALIBRATION,
                       calibration_samples=samples, calibration_seed=seed)


def quantize_onnx(data: bytes, calibration: Sequence[np.ndarray], calibration_seed: int,
                  per_channel: bool = True) -> QuantizedGraph:
    """Quantize the fp32 graph `data` (one input) on the `calibration` batches (each in the input's
    static shape; `bench.quant.calibration.InputSet.batches()`). `calibration_seed` is only recorded."""
    reason = skip_reason()
    if reason:
        raise RuntimeError(reason)
    if not calibration:
        raise ValueError("quantize_onnx needs at least one calibration batch")
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    input_name = onnx.load_from_string(data).graph.input[0].name

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter([{input_name: np.ascontiguousarray(b, dtype=np.float32)} for b in calibration])

        def get_next(self) -> Optional[dict[str, np.ndarray]]:
            return next(self._batches, None)

    with tempfile.TemporaryDirectory(prefix="bench-quant-") as tmp, _quiet_root_logger():
        source, prepared, output = (Path(tmp) / name for name in ("fp32.onnx", "prepared.onnx", "int8.onnx"))
        source.write_bytes(data)
        quant_pre_process(str(source), str(prepared))
        quantize_static(str(prepared), str(output), _Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
        quantized = output.read_bytes()
    samples = sum(int(b.shape[0]) for b in calibration)
    return QuantizedGraph(quantized, _scheme(samples, calibration_seed, per_channel))


def quantization_params(data: bytes) -> dict[str, np.ndarray]:
    """Every scale and zero point of a QDQ graph (initializers feeding QuantizeLinear/DequantizeLinear),
    by name: what calibration decided."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(data).graph
    names = {name for node in graph.node if node.op_type in ("QuantizeLinear", "DequantizeLinear")
             for name in node.input[1:]}
    return {init.name: numpy_helper.to_array(init) for init in graph.initializer if init.name in names}
