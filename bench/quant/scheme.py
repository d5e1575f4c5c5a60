"""What a quantization did, in the words a row records: one frozen object per quantized graph."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QuantScheme:
    """`tool`: the quantizer and its version; `format`: how int8 is written into the graph (QDQ: the
    float graph with QuantizeLinear/DequantizeLinear pairs that the runtime fuses into int8 kernels);
    `weights` / `activations`: type, symmetry and granularity; `calibration`: how activation ranges were
    chosen, on `calibration_samples` inputs drawn from `calibration_seed` (`bench.quant.calibration`)."""

    tool: str
    format: str
    weights: str
    activations: str
    calibration: str
    calibration_samples: int
    calibration_seed: int

    def describe(self) -> str:
        return (f"{self.tool} {self.format}; weights {self.weights}; activations {self.activations}; "
                f"calibration {self.calibration} on {self.calibration_samples} seeded N(0,1) inputs "
                f"(seed {self.calibration_seed})")

    def row_fields(self) -> dict[str, Any]:
        return {"quant_scheme": f"{self.tool} {self.format}; weights {self.weights}; activations {self.activations}",
                "quant_calibration": self.calibration, "quant_calibration_samples": self.calibration_samples,
                "quant_calibration_seed": self.calibration_seed}
