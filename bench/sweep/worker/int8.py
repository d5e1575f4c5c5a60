"""What an int8 unit measures beyond the deploy/train pair: each form's quantization error and its int8
speed against its own fp32 graph, and the columns they become. Runtime-agnostic: a runtime hands over,
per form, its gated fp32 graph and its int8 graph as a `bench.quant.evaluate.Int8Form` in the form's
`Opened.int8` (`bench.sweep.worker.runtimes.base`; a runtime declares int8 in its `precisions`; onnxruntime:
`bench.sweep.worker.ort_unit.open_int8`).

Order inside a unit (`bench.sweep.worker.unit`): both forms' fp32 graphs pass the fp32 gate first
(`bench.models.agreement.GATED_IN`); then `bench.quant.evaluate.measure_errors` runs the two graphs of
each form and the PyTorch training form in fp32 on the calibration-independent evaluation set and
measures each int8 output against its own fp32 output and against the training form's; after the
deploy/train pair is timed in int8, `time_against_fp32` times each form's fp32 and int8 sessions in
alternating blocks (`bench.measure.paired.measure_pair`, the same stop rule), speedup = fp32 latency /
int8 latency.
Errors are measurements, never a gate: a large one is a column, not a mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import torch

from bench.quant.evaluate import Int8Form
from bench.quant.error import QuantError
from bench.quant.scheme import QuantScheme

if TYPE_CHECKING:
    from bench.measure.timing import TimingConfig


@dataclass(frozen=True)
class Int8Speedup:
    """fp32 / int8 latency of one form, timed side by side (> 1: int8 is faster)."""

    median: float
    ci_low: Optional[float]
    ci_high: Optional[float]
    fp32_latency_ms_median: float


@dataclass
class Int8Record:
    """What an int8 cell's row records beside the timing of its int8 session."""

    scheme: QuantScheme
    vs_fp32: Optional[QuantError] = None
    """Against this form's own fp32 graph: the quantization's own error."""
    vs_train_fp32: Optional[QuantError] = None
    """Against the PyTorch training form in fp32: what this form's int8 delivers of the network."""
    speedup: Optional[Int8Speedup] = None

    def fields(self) -> dict[str, Any]:
        out = dict(self.scheme.row_fields())
        for suffix, error in (("vs_fp32", self.vs_fp32), ("vs_train_fp32", self.vs_train_fp32)):
            if error is not None:
                out.update({f"int8_rel_err_{suffix}": error.rel_err, f"int8_sqnr_db_{suffix}": error.sqnr_db,
                            f"int8_top1_agreement_{suffix}": error.top1_agreement})
                out["quant_eval_samples"] = error.samples
                out["quant_eval_top1_classes"] = error.reference_classes
        if self.speedup is not None:
            out.update({"int8_speedup_vs_fp32_median": self.speedup.median,
                        "int8_speedup_vs_fp32_ci_low": self.speedup.ci_low,
                        "int8_speedup_vs_fp32_ci_high": self.speedup.ci_high,
                        "fp32_latency_ms_median": self.speedup.fp32_latency_ms_median})
        return out


def time_against_fp32(form: Int8Form, device: torch.device, regime: str, config: TimingConfig, seed: int) -> Int8Speedup:
    """The form's fp32 and int8 sessions in alternating blocks; speedup = fp32 / int8 latency."""
    from bench.measure.paired import measure_pair

    m = measure_pair({"fp32": form.fp32_call, "int8": form.int8_call}, device, regime, config, seed=seed)
    return Int8Speedup(m.speedup_median, m.speedup_ci_low, m.speedup_ci_high, m.stats["fp32"].median_ms)
