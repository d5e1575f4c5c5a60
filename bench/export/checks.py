"""What `bench export` checks before its file takes the `--out` name: the sweep's gate, and ONNX Runtime.

Every check is `bench.models.gate`'s comparison under `bench.models.agreement.TOLERANCES`, with the
PyTorch training form as the reference, as a sweep's gate has it:
- deploy form vs training form, on the exported weights, with the fold check (`bench.reparam.fold_report`):
  a deploy form that is wrong, or unchanged although something was foldable, fails;
- deploy form vs training form with random BatchNorm statistics (`bench.models.init.randomize_bn_`) on a
  copy: fresh BatchNorms are the identity up to eps, so a fold that ignores the mean or swaps gamma and
  beta passes on the exported weights of an untrained model, not on these;
- for ONNX, ONNX Runtime's output of the written file vs the PyTorch training form: the export, and for a
  deploy file the conversion too.
The exported module itself is never randomized: a factory may have loaded trained weights.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from bench.export import onnx_check
from bench.models.gate import GATE_MAX_BATCH, GateResult, compare_outputs
from bench.usage import UsageError


class UncheckableOutput(UsageError):
    """The model returns something other than one tensor, which no check can compare."""


@dataclass(frozen=True)
class Check:
    """One check's name and the gate's verdict."""

    what: str
    result: GateResult

    @property
    def passed(self) -> bool:
        return self.result.passed

    def line(self) -> str:
        r = self.result
        if r.passed:
            return f"  passed  {self.what}: max_rel_err {r.max_rel_err:.3g} <= {r.tolerance:g}"
        return f"  FAILED  {self.what}: {r.describe()}"


def output_of(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`model(x)` without autograd; raises UncheckableOutput for a tuple, dict or other non-tensor output."""
    with torch.inference_mode():
        out = model(x)
    if not isinstance(out, torch.Tensor):
        raise UncheckableOutput(f"the model returns a {type(out).__name__}, not a tensor; the export checks "
                                "compare one output tensor: return one (e.g. the logits)")
    return out


def conversion_checks(train: nn.Module, deploy: nn.Module, x: torch.Tensor, precision: str,
                      reference: torch.Tensor) -> list[Check]:
    """The deploy form against the training form (`reference` = `train(x)`), on the exported weights and
    on a copy with random BatchNorm statistics (both in eval mode, in the export's dtype), on the first
    GATE_MAX_BATCH samples as the sweep's gate (eval-mode networks treat samples independently)."""
    from bench.models.init import randomize_bn_
    from bench.reparam import fold_report, to_deploy

    x, reference = x[:GATE_MAX_BATCH], reference[:GATE_MAX_BATCH]
    exported = replace(compare_outputs(reference, output_of(deploy, x), precision),
                       fold=fold_report(train, deploy))
    dtype = x.dtype
    random_train = randomize_bn_(copy.deepcopy(train).float()).eval()
    random_deploy = to_deploy(random_train).to(dtype)
    random_train = random_train.to(dtype)
    randomized = compare_outputs(output_of(random_train, x), output_of(random_deploy, x), precision)
    return [Check("PyTorch deploy form vs training form, exported weights", exported),
            Check("PyTorch deploy form vs training form, random BatchNorm statistics", randomized)]


def onnx_runtime_check(path: Path, form: str, x: torch.Tensor, precision: str,
                       reference: torch.Tensor) -> Check:
    """ONNX Runtime's output of the file at `path` against the PyTorch training form's `reference`."""
    result = replace(compare_outputs(reference.cpu(), onnx_check.run_onnx(path, x), precision),
                     compared=f"ONNX Runtime's output of the {form} form file",
                     reference="the PyTorch training form")
    return Check(f"ONNX Runtime ({form} form file) vs PyTorch training form", result)
