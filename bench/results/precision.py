"""The precisions a cell is timed in, declared once: every other list of them is read from `PRECISIONS`.

A `Precision` is one value of the sweep's `precision` axis (`schema.AXIS_SPECS` takes its choices from
here) with what the rest of the package needs to know of it: the torch dtype of its tensors
(`bench.measure.precision_switches.DTYPES` and its switches), the correctness gate's tolerance
(`bench.models.agreement.TOLERANCES`, where each value's reason is written), the `bench.measure.flops.Peak`
field of a GPU's dense peak, and what ONNX Runtime can feed. Which runtimes take a precision each runtime
declares itself (`bench.sweep.worker.runtimes`, with its reason), reading its list from here, so a runtime stays
one module. Adding a precision is one record below (plus its peak figures where GPUs have that math).

The dtype is a name, not a torch dtype: this package never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from bench.usage import unknown


@dataclass(frozen=True)
class Precision:
    """One precision and every property the package reads of it.

    `tolerance` and `gated_in` are exclusive and one is required: a precision is gated in itself, with a
    bound on the relative output error, or (a precision a runtime makes by quantizing another's graph:
    int8 from the fp32 export, `bench.quant`) in the precision its graph was exported in, whose tolerance
    the gate uses and whose tensors torch holds.
    """

    name: str
    dtype: str
    """The torch dtype of the model's and input's tensors, by its torch name ("float32")."""
    peak: str
    """The `bench.measure.flops.Peak` field of a GPU's dense peak in this precision."""
    tf32: bool = False
    """TF32 math on for fp32 matmuls and cuDNN convolutions (a CUDA switch; the tensors stay float32)."""
    numpy: bool = True
    """numpy has the dtype, so ONNX Runtime can take the tensors (bfloat16 has none)."""
    tolerance: Optional[float] = None
    """The gate's bound on max |deploy - train| / max |train| (the reasons: `bench.models.agreement`)."""
    gated_in: Optional[str] = None
    """The precision whose graph a runtime quantizes into this one; the gate runs there."""

    def __post_init__(self) -> None:
        if (self.tolerance is None) == (self.gated_in is None):
            raise ValueError(f"precision '{self.name}' needs exactly one of a gate tolerance or gated_in (the "
                             f"precision its gate runs in); got tolerance={self.tolerance}, gated_in={self.gated_in}")
        if self.tolerance is not None and not self.tolerance > 0:
            raise ValueError(f"precision '{self.name}': tolerance must be > 0; got {self.tolerance}")

    @property
    def reduced(self) -> bool:
        """Tensors narrower than float32: inference casts model and input, training autocasts."""
        return self.dtype != "float32"

    @property
    def torch_runs(self) -> bool:
        """torch computes in it (False: a runtime's quantization, run only by a runtime that quantizes)."""
        return self.gated_in is None


PRECISIONS: tuple[Precision, ...] = (
    Precision("fp32", "float32", peak="fp32", tolerance=1e-4),
    Precision("tf32", "float32", peak="tf32", tf32=True, tolerance=1e-2),
    Precision("fp16", "float16", peak="fp16", tolerance=5e-2),
    Precision("bf16", "bfloat16", peak="bf16", tolerance=5e-2, numpy=False),
    Precision("int8", "float32", peak="int8", gated_in="fp32"),
)
"""In the axis's order (the cells' loop order)."""

NAMES: tuple[str, ...] = tuple(p.name for p in PRECISIONS)
BY_NAME: dict[str, Precision] = {p.name: p for p in PRECISIONS}
TORCH_PRECISIONS: tuple[str, ...] = tuple(p.name for p in PRECISIONS if p.torch_runs)
"""What torch computes in: what a model is exported or cast in, and what a runtime takes by default."""
QUANTIZED: tuple[str, ...] = tuple(p.name for p in PRECISIONS if not p.torch_runs)
"""What only a runtime that quantizes runs (declared by those runtimes)."""


def precision(name: str) -> Precision:
    """The record of `name`, or a `UsageError` naming the known precisions."""
    if name not in BY_NAME:
        raise unknown("precision", name, NAMES)
    return BY_NAME[name]


def _check_gates() -> None:
    for p in PRECISIONS:
        if p.gated_in is not None and (p.gated_in not in BY_NAME or BY_NAME[p.gated_in].tolerance is None):
            raise ValueError(f"precision '{p.name}' is gated in '{p.gated_in}', which has no tolerance")


_check_gates()
