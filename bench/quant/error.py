"""How far an int8 output is from an fp32 one: three measures, none of them a gate.

- relative error: `bench.models.agreement.output_error`'s max_rel, max|y - r| / max|r| (the gate's
  measure, so an int8 row and an fp32 gate read on one scale).
- SQNR (signal-to-quantization-noise ratio) in dB: 10 log10(sum r^2 / sum (y - r)^2) over every output
  element (+inf when y == r). The energy view: a few large errors move it less than the max-based
  relative error, and 6 dB is about one bit (each halving of the noise amplitude adds 6.02 dB).
- top-1 agreement: the fraction of samples whose argmax over the classes (dim 1) is the same in both
  outputs. Outputs with spatial dims (a headless network's feature map) are averaged over them first,
  as the sweep's training step does for its loss. It says whether the int8 form would pick the same class,
  which is what a classifier's accuracy sees; on random weights it is a proxy, not an accuracy. A random
  network often sends every input to one or two classes with a small margin to the runner-up, so the
  count of distinct reference classes (`reference_classes`) goes with it: with 1, agreement only says
  whether that one class survived quantization.

All three in float64 on the CPU, so the measure adds no rounding of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bench.models.agreement import output_error


def _pair(reference: torch.Tensor, output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if reference.shape != output.shape:
        raise ValueError(f"output shape {tuple(output.shape)} != reference shape {tuple(reference.shape)}")
    return reference.detach().cpu().double(), output.detach().cpu().double()


def relative_error(reference: torch.Tensor, output: torch.Tensor) -> float:
    """max|output - reference| / max|reference| (`agreement.output_error`)."""
    return output_error(*_pair(reference, output))[1]


def sqnr_db(reference: torch.Tensor, output: torch.Tensor) -> float:
    """10 log10(signal energy / noise energy); +inf for identical outputs, -inf for a zero reference."""
    r, y = _pair(reference, output)
    signal, noise = float((r * r).sum()), float(((y - r) ** 2).sum())
    if not math.isfinite(noise):
        return -math.inf
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def _logits(t: torch.Tensor) -> torch.Tensor:
    if t.dim() < 2:
        raise ValueError(f"top-1 agreement needs (samples, classes, ...) outputs; got shape {tuple(t.shape)}")
    return t.flatten(2).mean(-1) if t.dim() > 2 else t


def top1_classes(reference: torch.Tensor) -> int:
    """How many distinct classes the reference's top-1 picks over its samples."""
    return int(_logits(reference.detach().cpu().double()).argmax(1).unique().numel())


def top1_agreement(reference: torch.Tensor, output: torch.Tensor) -> float:
    """Fraction of samples whose argmax over dim 1 agrees (spatial dims averaged first)."""
    r, y = _pair(reference, output)
    return float((_logits(r).argmax(1) == _logits(y).argmax(1)).double().mean())


@dataclass(frozen=True)
class QuantError:
    """The three measures of one int8 output against one fp32 reference, over `samples` inputs whose
    reference top-1 falls in `reference_classes` distinct classes."""

    rel_err: float
    sqnr_db: float
    top1_agreement: float
    samples: int
    reference_classes: int


def quant_error(reference: torch.Tensor, output: torch.Tensor) -> QuantError:
    """Every measure of `output` against `reference` (same shape, samples along dim 0)."""
    return QuantError(relative_error(reference, output), sqnr_db(reference, output),
                      top1_agreement(reference, output), int(reference.shape[0]), top1_classes(reference))
