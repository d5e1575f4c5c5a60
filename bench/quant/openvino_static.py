"""OpenVINO's own post-training quantization (NNCF) of an exported fp32 graph, where it is installed.

- The ONNX export is read by OpenVINO (`Core.read_model`) and compiled for the CPU with
  `INFERENCE_PRECISION_HINT=f32`: without it the CPU plugin runs fp32 graphs in bf16 where the CPU has
  bf16 instructions (measured here: 7e-3 relative error against PyTorch, beyond the fp32 gate).
- `nncf.quantize` with its defaults (preset PERFORMANCE: int8 weights symmetric, per output channel, or
  per tensor on request; int8 activations symmetric per tensor; ranges from the min and max over the
  calibration set; fast bias correction), on `bench.quant.calibration`'s seeded batches; the int8 model
  is compiled the same way.
- Threads: `INFERENCE_NUM_THREADS`, as ONNX Runtime's `intra_op_num_threads`.

Needs `openvino` and `nncf` (`pip install openvino nncf`); `skip_reason()` says so otherwise.
"""

from __future__ import annotations

import importlib.util
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np
import torch
from torch import nn

from bench.quant.evaluate import Int8Form
from bench.quant.scheme import QuantScheme

if TYPE_CHECKING:
    import openvino as ov

MODULES: tuple[str, ...] = ("openvino", "nncf")
CALIBRATION = "minmax + fast bias correction"
WEIGHTS = {True: "int8 symmetric per-channel", False: "int8 symmetric per-tensor"}
ACTIVATIONS = "int8 symmetric per-tensor"


def skip_reason() -> Optional[str]:
    missing = [name for name in MODULES if importlib.util.find_spec(name) is None]
    if missing:
        return f"OpenVINO int8 needs {', '.join(missing)} (pip install openvino nncf)"
    return None


@dataclass(frozen=True)
class OvInt8:
    """The fp32 model's output on the bound input (for the gate) and both models as an `Int8Form`."""

    fp32_output: Callable[[], torch.Tensor]
    form: Int8Form


def _compiled(core: ov.Core, model: ov.Model, num_threads: int) -> ov.CompiledModel:
    return core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                             "INFERENCE_NUM_THREADS": num_threads})


def _bound(compiled: ov.CompiledModel, x: np.ndarray) -> tuple[Callable[[], Any], Callable[[], np.ndarray]]:
    import openvino as ov

    request = compiled.create_infer_request()
    request.set_input_tensor(ov.Tensor(x))
    return request.infer, lambda: np.array(request.get_output_tensor(0).data)


def open_int8(module: nn.Module, x: torch.Tensor, num_threads: int, seed: int,
              per_channel: bool = True) -> OvInt8:
    """Export `module` (fp32, eval, CPU) on `x`, read and compile it, quantize it with NNCF on the
    calibration set for `x`'s shape drawn from `seed`, compile that; both bound to `x`."""
    reason = skip_reason()
    if reason:
        raise RuntimeError(reason)
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, QuantizationParameters

    from bench.export.onnx_check import export_onnx
    from bench.quant.calibration import calibration_set

    nncf.set_log_level(logging.ERROR)
    graph = export_onnx(module, x.cpu())
    core = ov.Core()
    with tempfile.TemporaryDirectory(prefix="bench-ov-") as tmp:
        path = Path(tmp) / "fp32.onnx"
        path.write_bytes(graph.data)
        model = core.read_model(str(path))
    calibration = calibration_set(tuple(x.shape), seed)
    batches = calibration.batches()
    weights = QuantizationParameters(per_channel=per_channel)
    quantized = nncf.quantize(model, nncf.Dataset(batches), subset_size=len(batches),
                              advanced_parameters=AdvancedQuantizationParameters(weights_quantization_params=weights))
    fp32, int8 = _compiled(core, model, num_threads), _compiled(core, quantized, num_threads)
    array = x.detach().cpu().contiguous().numpy()
    (fp32_call, fp32_fetch), (int8_call, _) = _bound(fp32, array), _bound(int8, array)

    def fp32_output() -> torch.Tensor:
        fp32_call()
        return torch.from_numpy(fp32_fetch())

    scheme = QuantScheme(tool=f"openvino {ov.__version__.split('-')[0]} nncf {nncf.__version__} quantize", format="FakeQuantize",
                         weights=WEIGHTS[per_channel], activations=ACTIVATIONS, calibration=CALIBRATION,
                         calibration_samples=calibration.drawn, calibration_seed=calibration.seed)
    run = lambda compiled: lambda a: compiled(a)[0]  # noqa: E731
    return OvInt8(fp32_output, Int8Form(fp32_call, int8_call, run(fp32), run(int8), scheme))
