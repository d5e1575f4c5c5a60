"""The quantizers `bench quant` can use, one registration each: name -> (why it cannot run here, open).

`open(module, x, num_threads, seed, per_channel)` exports the fp32 form on `x`, quantizes it on the
seeded calibration set for `x`'s shape and returns (the fp32 graph's output on `x`, for the fp32 gate;
both graphs as an `Int8Form`). A sweep runtime that quantizes calls the same module-level functions
(`bench.quant.ort.open_int8`, `bench.quant.openvino_static.open_int8`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from bench.quant.evaluate import Int8Form

Opened = tuple[Callable[[], torch.Tensor], Int8Form]


@dataclass(frozen=True)
class Quantizer:
    skip_reason: Callable[[], Optional[str]]
    open: Callable[[nn.Module, torch.Tensor, int, int, bool], Opened]


def _onnxruntime(module: nn.Module, x: torch.Tensor, num_threads: int, seed: int, per_channel: bool) -> Opened:
    from bench.quant.ort import open_int8

    opened = open_int8(module, x, torch.device("cpu"), num_threads, seed, per_channel=per_channel)
    return opened.fp32.output, opened.form


def _openvino(module: nn.Module, x: torch.Tensor, num_threads: int, seed: int, per_channel: bool) -> Opened:
    from bench.quant.openvino_static import open_int8

    opened = open_int8(module, x, num_threads, seed, per_channel=per_channel)
    return opened.fp32_output, opened.form


def _ort_skip() -> Optional[str]:
    from bench.quant.onnx_static import skip_reason

    return skip_reason()


def _ov_skip() -> Optional[str]:
    from bench.quant.openvino_static import skip_reason

    return skip_reason()


QUANTIZERS: dict[str, Quantizer] = {
    "onnxruntime": Quantizer(_ort_skip, _onnxruntime),
    "openvino": Quantizer(_ov_skip, _openvino),
}
