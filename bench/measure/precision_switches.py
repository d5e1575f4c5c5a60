"""The switches that change what a number means, set in one place and recorded in every row.

Precision settings, read from the one table `bench.results.precision.PRECISIONS` (its `tf32` and `dtype`):
- fp32: TF32 off for matmul and cuDNN convolutions: IEEE fp32 math.
- tf32: TF32 on for both: fp32 tensors, tensor-core math with a 10-bit mantissa.
- int8: TF32 off, float32 tensors in torch: int8 is not a torch dtype here but a runtime's quantization of
  the exported fp32 graph (`bench.quant`), so the model, the input and every torch reference stay IEEE fp32.
- fp16 / bf16: TF32 off (anything left in fp32 stays IEEE). The reduced precision itself is the caller's
  choice: `dtype_for(precision)` to cast model and input (`.to(dtype)`, every op in that dtype: how a
  deployed network runs), or `autocast_context(precision, device)` (torch.autocast: some ops kept in
  fp32, casts timed too: how networks train). The sweep casts for inference, autocasts for training.

TF32 goes through the `fp32_precision` API (`torch.backends.cuda.matmul.fp32_precision`,
`torch.backends.cudnn.conv.fp32_precision`: "ieee" or "tf32") where torch has it (>= 2.9). The legacy flags
(`allow_tf32`, `set_float32_matmul_precision`) warn there, and torch raises once both APIs were used in one
process, so the legacy flags are only written on older torch, and only read back where the new API is
absent; on newer torch the legacy columns are derived from the new settings (see `reproducibility_flags`).

Every precision also sets `cudnn.benchmark` (default True: cuDNN autotunes each new shape on its first
call, which the timing warm-up absorbs) and `use_deterministic_algorithms` (default False).

`precision_settings(precision)` applies the same switches for a block and restores every one it touched
afterwards: for measurements inside someone else's process (`bench.api.benchmark`), where torch's own
defaults (cuDNN convolutions in TF32, no autotuning) would otherwise time something else than a sweep's
cell of that precision. `no_autotune()` turns cuDNN autotuning off for a block (the correctness gate's
batch, a side shape), so it costs no extra autotune.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch

from bench.results.precision import PRECISIONS, precision as precision_record

DTYPES: dict[str, torch.dtype] = {p.name: getattr(torch, p.dtype) for p in PRECISIONS}
"""The tensor dtype torch holds per precision; int8 graphs take float32 inputs and quantize inside."""


# legacy float32_matmul_precision for each fp32_precision value of the new API
_LEGACY_MATMUL_PRECISION = {"ieee": "highest", "tf32": "high", "bf16": "medium"}


def has_fp32_precision_api() -> bool:
    """True where torch has the per-backend `fp32_precision` switches (torch >= 2.9)."""
    return (hasattr(torch.backends.cuda.matmul, "fp32_precision")
            and hasattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision"))


def _tf32(enabled: bool) -> None:
    if has_fp32_precision_api():
        value = "tf32" if enabled else "ieee"
        torch.backends.cuda.matmul.fp32_precision = value
        torch.backends.cudnn.conv.fp32_precision = value
        return
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
    torch.set_float32_matmul_precision("high" if enabled else "highest")


def apply_precision_settings(precision: str, cudnn_benchmark: bool = True,
                             deterministic: bool = False) -> dict[str, Any]:
    """Set the global switches for `precision`; returns `reproducibility_flags()` afterwards."""
    _tf32(precision_record(precision).tf32)
    torch.backends.cudnn.benchmark = cudnn_benchmark
    torch.backends.cudnn.deterministic = deterministic
    if torch.are_deterministic_algorithms_enabled() != deterministic:
        # about a second per call even when nothing changes, so only when it does
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
    return reproducibility_flags()


def _saved_switches() -> dict[str, Any]:
    """Every switch `apply_precision_settings` writes, as it is now (raw values, "none" kept)."""
    saved: dict[str, Any] = {
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
    }
    if has_fp32_precision_api():
        saved["fp32_precision"] = (torch.backends.cuda.matmul.fp32_precision,
                                   torch.backends.cudnn.conv.fp32_precision)
    else:
        saved["legacy_tf32"] = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
                                torch.get_float32_matmul_precision())
    return saved


def _restore_switches(saved: dict[str, Any]) -> None:
    if "fp32_precision" in saved:
        torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision = saved["fp32_precision"]
    else:
        matmul, cudnn, float32_matmul = saved["legacy_tf32"]
        torch.backends.cuda.matmul.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = cudnn
        torch.set_float32_matmul_precision(float32_matmul)
    torch.backends.cudnn.benchmark = saved["cudnn_benchmark"]
    torch.backends.cudnn.deterministic = saved["cudnn_deterministic"]
    if (torch.are_deterministic_algorithms_enabled() != saved["deterministic"]
            or torch.is_deterministic_algorithms_warn_only_enabled() != saved["deterministic_warn_only"]):
        torch.use_deterministic_algorithms(saved["deterministic"], warn_only=saved["deterministic_warn_only"])


@contextlib.contextmanager
def precision_settings(precision: str, cudnn_benchmark: bool = True,
                       deterministic: bool = False) -> Iterator[dict[str, Any]]:
    """`apply_precision_settings` for a block (yields its flags); every switch restored afterwards."""
    precision_record(precision)
    saved = _saved_switches()
    try:
        yield apply_precision_settings(precision, cudnn_benchmark, deterministic)
    finally:
        _restore_switches(saved)


@contextlib.contextmanager
def no_autotune() -> Iterator[None]:
    """cudnn.benchmark off for a block: the gate's batch (and any other side shape) costs no autotune."""
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved


def _resolved_fp32_precision(module: Any) -> str:
    """A backend's `fp32_precision`, with "none" (inherit) resolved through the generic switch."""
    value = module.fp32_precision
    return torch.backends.fp32_precision if value == "none" else value


def _tf32_flags() -> dict[str, Any]:
    """TF32 state under the legacy column names, plus the new API's values where torch has it.

    `fp32_precision_matmul` / `fp32_precision_cudnn_conv`: "ieee", "tf32" (or "none": nothing set through
    the new API, the legacy flags decide). Legacy columns are derived from a set new value, because reading
    a legacy flag after the new API was used raises."""
    if not has_fp32_precision_api():
        return {"tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
                "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
                "float32_matmul_precision": torch.get_float32_matmul_precision(),
                "fp32_precision_matmul": None, "fp32_precision_cudnn_conv": None}
    matmul = _resolved_fp32_precision(torch.backends.cuda.matmul)
    conv = _resolved_fp32_precision(torch.backends.cudnn.conv)
    return {
        "tf32_matmul": matmul == "tf32" if matmul != "none" else bool(torch.backends.cuda.matmul.allow_tf32),
        "tf32_cudnn": conv == "tf32" if conv != "none" else bool(torch.backends.cudnn.allow_tf32),
        "float32_matmul_precision": (_LEGACY_MATMUL_PRECISION[matmul] if matmul != "none"
                                     else torch.get_float32_matmul_precision()),
        "fp32_precision_matmul": matmul,
        "fp32_precision_cudnn_conv": conv,
    }


def reproducibility_flags() -> dict[str, Any]:
    """The current switches, under the `Result` column names (the two `fp32_precision_*` keys are new
    columns: None on torch without the new API)."""
    return {
        **_tf32_flags(),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "deterministic": bool(torch.are_deterministic_algorithms_enabled() or torch.backends.cudnn.deterministic),
    }


def dtype_for(precision: str) -> torch.dtype:
    """Tensor dtype of a precision: fp32 and tf32 keep float32 tensors."""
    return DTYPES[precision_record(precision).name]


def autocast_context(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """torch.autocast to a reduced precision's dtype (fp16/bf16) on `device`'s type; a no-op context for the
    float32 ones (fp32, tf32, int8)."""
    if not precision_record(precision).reduced:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=DTYPES[precision])


@contextlib.contextmanager
def legacy_readable_tf32() -> Iterator[None]:
    """cuDNN's TF32 switches at torch's default ("tf32") for a block, restored afterwards.

    Why: `torch.export` (and so the ONNX exporter) reads the legacy `cudnn.allow_tf32`, which raises on
    torch >= 2.9 once the new `fp32_precision` API has set "ieee" (as every fp32 cell does). The switches
    change how CUDA kernels round, not what a traced graph holds, so an export inside this block is the
    same graph; no kernel of the cell runs inside it.
    """
    if not has_fp32_precision_api():
        yield
        return
    modules = [torch.backends.cudnn.conv, torch.backends.cudnn.rnn]
    saved = [m.fp32_precision for m in modules]
    try:
        for module in modules:
            module.fp32_precision = "tf32"
        yield
    finally:
        for module, value in zip(modules, saved):
            module.fp32_precision = value
