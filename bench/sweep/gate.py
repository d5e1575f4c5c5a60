"""The correctness gate: a deploy-form cell must compute what its training form computes.

Both forms run eagerly on the same input, in the cell's precision and memory format. Recorded:
`max_abs_err = max |deploy - train|` and `max_rel_err = max_abs_err / max |train|` (relative to the output's
scale, not element-wise: logits near zero would make element-wise ratios meaningless). A cell whose
`max_rel_err` exceeds `TOLERANCES[precision]` is marked 'mismatch' and no speedup may be reported from it.

Why these tolerances (relative to the largest output):
- fp32 1e-4: folding reorders sums (three branch kernels added before the conv instead of three convs
  added after), so exact equality is impossible; fp32 rounding (unit roundoff 6e-8) accumulated over
  ~25 layers of 3x3 convs with random BN statistics gives errors around 1e-6..1e-5 of the output scale.
  1e-4 leaves a 10x margin and still catches any real algebra error (those are O(1e-2) or larger).
- tf32 1e-2: convolutions read 10-bit mantissas (unit roundoff 4.9e-4); the two forms round different
  kernels, so per-layer differences of ~1e-3 compound through the network.
- fp16 / bf16 5e-2: fp16 has the same 10-bit mantissa as tf32 but also stores every activation and the
  folded weights in it; bf16 has 7 bits (unit roundoff 3.9e-3). Errors of 1e-2 of the output scale are
  normal for a 20-layer network, while a wrong fold (a branch dropped, BN misapplied) is O(1e-1..1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

TOLERANCES: dict[str, float] = {"fp32": 1e-4, "tf32": 1e-2, "fp16": 5e-2, "bf16": 5e-2}


@dataclass(frozen=True)
class GateResult:
    max_abs_err: float
    max_rel_err: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.max_rel_err <= self.tolerance

    def row_fields(self) -> dict[str, object]:
        """The deploy row's columns from the gate; a new gate field (a fold report) adds its column here."""
        return {"max_abs_err": self.max_abs_err, "max_rel_err": self.max_rel_err, "tolerance": self.tolerance}

    def describe(self) -> str:
        return (f"deploy output differs from the training form: max_rel_err {self.max_rel_err:.3g} > "
                f"tolerance {self.tolerance:g} (max_abs_err {self.max_abs_err:.3g})")


def compare_outputs(train_out: torch.Tensor, deploy_out: torch.Tensor, precision: str) -> GateResult:
    """Errors computed in float64 so the comparison itself adds no rounding."""
    if train_out.shape != deploy_out.shape:
        raise RuntimeError(f"deploy output shape {tuple(deploy_out.shape)} != training form "
                           f"{tuple(train_out.shape)}")
    a, b = train_out.detach().double(), deploy_out.detach().double()
    max_abs = float((a - b).abs().max())
    scale = float(a.abs().max())
    max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
    if not torch.isfinite(a).all() or not torch.isfinite(b).all():
        max_rel = float("inf")
    return GateResult(max_abs_err=max_abs, max_rel_err=max_rel, tolerance=TOLERANCES[precision])


def run_gate(train: nn.Module, deploy: nn.Module, x: torch.Tensor, precision: str) -> GateResult:
    """Both models must already be prepared (device, dtype, memory format) and in eval mode."""
    with torch.inference_mode():
        return compare_outputs(train(x), deploy(x), precision)
