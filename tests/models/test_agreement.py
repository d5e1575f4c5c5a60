"""The tolerance table has no hole: int8 is gated in fp32 on purpose, and an unknown precision is named."""

from __future__ import annotations

import pytest
import torch

from bench.models.agreement import TOLERANCES, gate_precision, gate_tolerance
from bench.models.gate import compare_outputs


def test_int8_is_gated_in_fp32_and_a_precision_without_a_tolerance_is_named():
    assert gate_precision("int8") == "fp32" and gate_tolerance("int8") == TOLERANCES["fp32"]
    assert compare_outputs(torch.ones(2, 3), torch.ones(2, 3), "int8").tolerance == TOLERANCES["fp32"]
    with pytest.raises(ValueError, match="precision 'fp8' has no gate tolerance; known: fp32, .*int8"):
        gate_tolerance("fp8")
