"""The fixed, seeded inputs a quantizer calibrates on, and the ones its error is measured on.

Both are N(0, 1) images, as the sweep's timing and gate inputs are: with random weights there is no
data distribution to match, and a calibration set of the same distribution as the inputs measured is the
best case a real deployment aims for. With real weights (`bench quant --checkpoint`), images would be the
honest calibration set; none is downloaded here, so the numbers stay "N(0, 1) inputs" and say so.

An exported graph has a static batch, so a set is fed in batches of the graph's shape: `samples` is
rounded up to whole batches (at least one), and the set is drawn batch after batch from one generator
seeded with `seed`. Same seed, same shape -> the same tensors, so MinMax calibration gives the same
scales every time (tests/quant/test_onnx_static.py holds this).

Seeds: the calibration set is drawn from `seed + CALIBRATION_SEED_OFFSET`, the evaluation set from
`seed + EVALUATION_SEED_OFFSET`; the sweep's timing input (whose first samples an onnxruntime unit's
gate reads) uses `seed`, so no input the errors or the gate are measured on was seen by the calibration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

CALIBRATION_SAMPLES = 32
"""ONNX Runtime's examples calibrate on tens to hundreds of images; MinMax needs few (it keeps extremes),
and 32 keeps a CPU sweep's calibration under a few seconds per form."""
EVALUATION_SAMPLES = 64
"""Top-1 agreement moves in steps of 1/64 (1.6%)."""
CALIBRATION_SEED_OFFSET = 1000
EVALUATION_SEED_OFFSET = 2000


@dataclass(frozen=True)
class InputSet:
    """`samples` (rounded up to whole batches) N(0, 1) inputs of `shape` = the graph's (B, C, H, W)."""

    shape: tuple[int, ...]
    samples: int
    seed: int

    def __post_init__(self) -> None:
        if len(self.shape) < 1 or any(int(d) < 1 for d in self.shape):
            raise ValueError(f"input shape must be positive dims (batch first); got {self.shape}")
        if self.samples < 1:
            raise ValueError(f"an input set needs at least one sample; got {self.samples}")

    @property
    def n_batches(self) -> int:
        return max(1, math.ceil(self.samples / self.shape[0]))

    @property
    def drawn(self) -> int:
        """Samples actually drawn: whole batches."""
        return self.n_batches * self.shape[0]

    def batches(self) -> list[np.ndarray]:
        """The set as float32 arrays of `shape`, the same on every call."""
        generator = torch.Generator().manual_seed(self.seed)
        return [torch.randn(tuple(self.shape), generator=generator).numpy() for _ in range(self.n_batches)]


def calibration_set(shape: tuple[int, ...], seed: int, samples: int = CALIBRATION_SAMPLES) -> InputSet:
    return InputSet(tuple(shape), samples, seed + CALIBRATION_SEED_OFFSET)


def evaluation_set(shape: tuple[int, ...], seed: int, samples: int = EVALUATION_SAMPLES) -> InputSet:
    return InputSet(tuple(shape), samples, seed + EVALUATION_SEED_OFFSET)
