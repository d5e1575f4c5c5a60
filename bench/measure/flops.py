"""MACs of a forward pass, and the dense peak of known GPUs, so a row can say how close it came.

MACs = FLOPs / 2 as counted by `torch.utils.flop_counter.FlopCounterMode`, which counts the matrix work
(convolutions, matmuls, linear layers, attention) at 2 FLOPs per multiply-accumulate and ignores
element-wise work (bias adds, BN, activations): the same convention as papers' "FLOPs" tables (RepVGG
Table 4 reports these MACs as FLOPs). Conv: N * C_out * H_out * W_out * (C_in / groups) * k_h * k_w.
The count is taken with `bench.measure.mac_counter.MacCounter` (the same formulas without importing
torch._dynamo), and with FlopCounterMode itself only for models that call functions it cannot see into.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn

from bench.usage import unknown

PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "fp16", "bf16", "int8")


def _as_call(example_input: Any) -> tuple[tuple, dict]:
    if isinstance(example_input, dict):
        return (), dict(example_input)
    if isinstance(example_input, (tuple, list)):
        return tuple(example_input), {}
    return (example_input,), {}


def count_macs(model: nn.Module, example_input: Any) -> int:
    """Multiply-accumulates of one forward on `example_input` (a tensor, a tuple of args, or kwargs).

    Counted in eval mode under no_grad (training-mode BN would update its running statistics); the
    model's mode is restored afterwards. MACs scale with the batch: pass a batch-1 input for per-sample.
    """
    from bench.measure.mac_counter import MacCounter

    counter = MacCounter()
    _run_counted(model, example_input, counter)
    if not counter.opaque:
        return counter.flops // 2
    from torch.utils.flop_counter import FlopCounterMode

    reference = FlopCounterMode(display=False)
    _run_counted(model, example_input, reference)
    return int(reference.get_total_flops()) // 2


def _run_counted(model: nn.Module, example_input: Any, counter: Any) -> None:
    args, kwargs = _as_call(example_input)
    was_training = model.training
    try:
        model.eval()
        with counter, torch.no_grad():
            model(*args, **kwargs)
    finally:
        model.train(was_training)


def tflops_achieved(macs_per_call: float, latency_ms: float) -> float:
    """2 * MACs / seconds / 1e12: the dense-equivalent TFLOP/s one call of `latency_ms` reached."""
    if latency_ms <= 0:
        raise ValueError(f"latency_ms must be > 0; got {latency_ms}")
    return 2.0 * macs_per_call / (latency_ms / 1000.0) / 1e12


@dataclass(frozen=True)
class Peak:
    """Dense peak TFLOP/s per precision (None: no such math on that GPU); int8 in dense TOPS (tera
    int8 operations per second, a multiply-add counted as 2, as the other fields count FLOPs)."""

    name: str
    pattern: str
    fp32: float
    tf32: Optional[float]
    fp16: float
    bf16: Optional[float]
    int8: Optional[float] = None


PEAKS: tuple[Peak, ...] = (
    Peak("H100 PCIe", r"H100.*PCIe", 51.0, 378.0, 756.5, 756.5, 1513.0),
    Peak("H100 NVL", r"H100.*NVL", 60.0, 417.5, 835.5, 835.5, 1670.5),
    Peak("H100 SXM", r"H100", 67.0, 494.5, 989.5, 989.5, 1979.0),
    Peak("H200 NVL", r"\bH200.*NVL", 60.0, 417.5, 835.5, 835.5, 1670.5),
    Peak("H200 SXM", r"\bH200", 67.0, 494.5, 989.5, 989.5, 1979.0),
    Peak("A100", r"A100", 19.5, 156.0, 312.0, 312.0, 624.0),
    Peak("L4", r"\bL4\b", 30.3, 60.0, 121.0, 121.0, 242.5),
    Peak("RTX 4090", r"RTX 4090(?!\s*D\b)", 82.6, 82.6, 165.2, 165.2, 660.6),
    Peak("V100S PCIe", r"V100S", 16.4, None, 130.0, None),
    Peak("V100 PCIe", r"V100.*PCIe", 14.0, None, 112.0, None),
    Peak("V100 SXM2", r"V100", 15.7, None, 125.0, None),
    Peak("GTX 1080 Ti", r"1080 ?Ti", 11.34, None, 0.177, None),
)
"""Order matters: the first pattern found in the device name (case-insensitive) wins.

Sources, vendor datasheets; figures marked "with sparsity" there are halved to the dense rate:
- H100 SXM / PCIe / NVL: NVIDIA H100 Tensor Core GPU datasheet (2023): FP32 67 / 51 / 60; TF32 Tensor
  989* / 756* / 835*; BF16 and FP16 Tensor 1,979* / 1,513* / 1,671* (* with sparsity).
- H200 SXM / NVL: NVIDIA H200 Tensor Core GPU datasheet (2024): same compute as H100 SXM / NVL.
- A100 40 GB and 80 GB, SXM and PCIe: NVIDIA A100 datasheet (2021): FP32 19.5, TF32 156, BF16 312,
  FP16 312 (dense; 312 / 624 with sparsity).
- L4: NVIDIA L4 datasheet (2023): FP32 30.3, TF32 120*, BF16 242*, FP16 242*.
- RTX 4090: NVIDIA Ada Lovelace GPU architecture whitepaper (v2.1), Table: FP32 82.6, TF32 Tensor 82.6,
  FP16 and BF16 Tensor with FP32 accumulate 165.2 (the accumulation PyTorch uses; 330.3 with FP16).
- V100 SXM2 / PCIe / V100S PCIe: NVIDIA V100 datasheet (2020): FP32 15.7 / 14 / 16.4, Tensor (FP16)
  125 / 112 / 130; no TF32 or BF16 math.
- INT8 Tensor (dense TOPS, from the same datasheets; "*" figures halved): H100 SXM / PCIe / NVL 3,958* /
  3,026* / 3,341*; H200 as H100 SXM / NVL; A100 624; L4 485*; RTX 4090 660.6 (whitepaper, dense). V100 and
  GTX 1080 Ti have no int8 tensor math (only DP4A instructions): None.
- GTX 1080 Ti: NVIDIA product page, 3,584 CUDA cores at 1,582 MHz boost -> FP32 2 * 3584 * 1.582 GHz
  = 11.34; no tensor cores, and GP102 runs FP16 at 1/64 of FP32 (Pascal tuning guide) -> 0.177.
"""


def find_peak(device_name: str) -> Optional[Peak]:
    for peak in PEAKS:
        if re.search(peak.pattern, device_name, flags=re.IGNORECASE):
            return peak
    return None


def peak_tflops(device_name: str, precision: str) -> Optional[float]:
    """Dense peak TFLOP/s of `device_name` (e.g. torch.cuda.get_device_name()) at `precision`, or None."""
    if precision not in PRECISIONS:
        raise unknown("precision", precision, PRECISIONS)
    peak = find_peak(device_name)
    return getattr(peak, precision) if peak is not None else None
