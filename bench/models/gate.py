"""The correctness gate: a deploy-form cell must compute what its training form computes.

Both forms run eagerly on the same input, in the cell's precision and memory format. Recorded:
`max_abs_err` and `max_rel_err` of `bench.models.agreement.output_error`. A cell whose `max_rel_err`
exceeds `agreement.gate_tolerance(precision)` (the reasons for each value are there; an int8 cell is
gated in fp32, `agreement.GATED_IN`) is marked 'mismatch' and no speedup may be reported from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from bench.models.agreement import gate_tolerance, output_error
from bench.reparam.fold_report import FoldReport

GATE_MAX_BATCH = 16
"""Eval-mode BN and convs treat samples independently, so a few samples check the conversion as well as
the full batch does, without a second full-batch training-form forward (memory) at batch 256."""


@dataclass(frozen=True)
class GateResult:
    """The outputs' agreement, and what the conversion removed (`fold`, a `bench.reparam.FoldReport`):
    a deploy form that equals its training form only because nothing was folded fails the gate too.
    `compared` and `reference` name the two outputs in the mismatch text (an exported session's gate
    compares each form's ONNX Runtime output with the PyTorch training form)."""

    max_abs_err: float
    max_rel_err: float
    tolerance: float
    fold: Optional[FoldReport] = None
    compared: str = "deploy output"
    reference: str = "the training form"

    @property
    def fold_problem(self) -> Optional[str]:
        return self.fold.problem() if self.fold is not None else None

    @property
    def passed(self) -> bool:
        return self.max_rel_err <= self.tolerance and self.fold_problem is None

    def row_fields(self) -> dict[str, object]:
        """The deploy row's columns from the gate."""
        fold = self.fold
        return {"max_abs_err": self.max_abs_err, "max_rel_err": self.max_rel_err, "tolerance": self.tolerance,
                "batchnorms_train": fold.batchnorms_before if fold else None,
                "batchnorms_deploy": fold.batchnorms_after if fold else None,
                "multibranch_train": fold.multibranch_before if fold else None,
                "multibranch_deploy": fold.multibranch_after if fold else None}

    def describe(self) -> str:
        if self.fold_problem is not None:
            return f"deploy form not converted: {self.fold_problem}"
        return (f"{self.compared} differs from {self.reference}: max_rel_err {self.max_rel_err:.3g} > "
                f"tolerance {self.tolerance:g} (max_abs_err {self.max_abs_err:.3g})")


def compare_outputs(train_out: torch.Tensor, deploy_out: torch.Tensor, precision: str) -> GateResult:
    """The gate's verdict on two outputs of the same input (`agreement.output_error`)."""
    if train_out.shape != deploy_out.shape:
        raise RuntimeError(f"deploy output shape {tuple(deploy_out.shape)} != training form "
                           f"{tuple(train_out.shape)}")
    max_abs, max_rel = output_error(train_out, deploy_out)
    return GateResult(max_abs_err=max_abs, max_rel_err=max_rel, tolerance=gate_tolerance(precision))


def run_gate(train: nn.Module, deploy: nn.Module, x: torch.Tensor, precision: str) -> GateResult:
    """Both models must already be prepared (device, dtype, memory format) and in eval mode."""
    with torch.inference_mode():
        return compare_outputs(train(x), deploy(x), precision)
