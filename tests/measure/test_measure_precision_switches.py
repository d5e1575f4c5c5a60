"""The precision switches: set through torch's `fp32_precision` API where it exists, never mixed with the
legacy TF32 flags, and recorded under both names."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch

from bench.measure.precision_switches import apply_precision_settings, has_fp32_precision_api, reproducibility_flags


@pytest.fixture
def restore_switches():
    backends = torch.backends
    new_api = has_fp32_precision_api()
    saved_tf32 = ((backends.cuda.matmul.fp32_precision, backends.cudnn.conv.fp32_precision) if new_api else
                  (backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32, torch.get_float32_matmul_precision()))
    saved = (backends.cudnn.benchmark, backends.cudnn.deterministic, torch.are_deterministic_algorithms_enabled())
    yield
    if new_api:
        backends.cuda.matmul.fp32_precision, backends.cudnn.conv.fp32_precision = saved_tf32
    else:
        backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32 = saved_tf32[:2]
        torch.set_float32_matmul_precision(saved_tf32[2])
    backends.cudnn.benchmark, backends.cudnn.deterministic = saved[0], saved[1]
    torch.use_deterministic_algorithms(saved[2])


def test_precision_settings_set_and_report_the_switches(restore_switches):
    new = has_fp32_precision_api()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the legacy TF32 flags warn on torch >= 2.9: none may be touched
        flags = apply_precision_settings("tf32")
        assert flags == reproducibility_flags()
    assert flags == {"tf32_matmul": True, "tf32_cudnn": True, "float32_matmul_precision": "high",
                     "fp32_precision_matmul": "tf32" if new else None,
                     "fp32_precision_cudnn_conv": "tf32" if new else None,
                     "cudnn_benchmark": True, "deterministic": False}
    for precision in ("fp32", "fp16", "bf16", "int8"):
        flags = apply_precision_settings(precision, cudnn_benchmark=False, deterministic=True)
        assert flags == {"tf32_matmul": False, "tf32_cudnn": False, "float32_matmul_precision": "highest",
                         "fp32_precision_matmul": "ieee" if new else None,
                         "fp32_precision_cudnn_conv": "ieee" if new else None,
                         "cudnn_benchmark": False, "deterministic": True}
    with pytest.raises(ValueError, match="precision 'fp8' is unknown; known: fp32, tf32"):
        apply_precision_settings("fp8")


@pytest.mark.skipif(not has_fp32_precision_api(), reason="torch < 2.9 has no fp32_precision API")
def test_new_api_is_what_torch_sees():
    """In a fresh process (no earlier test's switches), torch's own switches hold the values set, and torch's
    own mixed-API check (it raises on a legacy read after a mix) stays quiet for fp32."""
    code = """
import torch
from bench.measure.precision_switches import apply_precision_settings
apply_precision_settings("tf32")
assert torch.backends.cuda.matmul.fp32_precision == "tf32"
assert torch.backends.cudnn.conv.fp32_precision == "tf32"
apply_precision_settings("fp32")
assert torch.backends.cuda.matmul.fp32_precision == "ieee"
assert torch.backends.cudnn.conv.fp32_precision == "ieee"
assert torch.get_float32_matmul_precision() == "highest"
"""
    result = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
