"""Measuring one network's int8 forms: each int8 output against its own fp32 output and against the
training form's fp32 output, on the calibration-independent evaluation set.

Runtime-agnostic: a runtime hands over, per form, callables that run its fp32 graph and its int8 graph
on a float32 array (`Int8Form`); `bench.quant.ort.open_int8` makes them for ONNX Runtime. Used by the
sweep (`bench.sweep.worker.int8`) and by `bench quant`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from bench.quant.calibration import evaluation_set
from bench.quant.error import QuantError, quant_error
from bench.quant.scheme import QuantScheme


@dataclass(frozen=True)
class Int8Form:
    """One form's two graphs: `fp32_call` / `int8_call` run the bound timing input (the callables a
    sweep times), `fp32_run` / `int8_run` run another float32 array of the same shape (for the error)."""

    fp32_call: Callable[[], Any]
    int8_call: Callable[[], Any]
    fp32_run: Callable[[np.ndarray], Any]
    int8_run: Callable[[np.ndarray], Any]
    scheme: QuantScheme


def _outputs(run: Callable[[np.ndarray], Any], batches: list[np.ndarray]) -> torch.Tensor:
    return torch.cat([torch.as_tensor(np.asarray(run(b))) for b in batches])


def measure_errors(forms: list[Int8Form], train: nn.Module, shape: tuple[int, ...], seed: int,
                   device: torch.device | str = "cpu") -> list[tuple[QuantError, QuantError]]:
    """Per form, (int8 vs its own fp32 graph, int8 vs the PyTorch training form in fp32) on
    `evaluation_set(shape, seed)`; `train` is the fp32 training form, on `device`, in eval mode."""
    batches = evaluation_set(shape, seed).batches()
    with torch.inference_mode():
        reference = torch.cat([train(torch.from_numpy(b).to(device)).float().cpu() for b in batches])
    errors = []
    for form in forms:
        own, quantized = _outputs(form.fp32_run, batches), _outputs(form.int8_run, batches)
        errors.append((quant_error(own, quantized), quant_error(reference, quantized)))
    return errors
