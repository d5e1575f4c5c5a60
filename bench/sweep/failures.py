"""A failure of a cell as a row: its status ('oom' or 'error') and a short text that says what happened."""

from __future__ import annotations

import torch

OOM_MARKERS: tuple[str, ...] = (
    "out of memory", "can't allocate memory", "cannot allocate memory", "not enough memory",
    "alloc_failed",  # CUBLAS_STATUS_ALLOC_FAILED / CUDNN_STATUS_ALLOC_FAILED: the library's cudaMalloc failed
)
ERROR_CHARS = 1500


def classify(exc: BaseException) -> str:
    """'oom' for torch.OutOfMemoryError or an allocator failure message, else 'error'."""
    if isinstance(exc, torch.OutOfMemoryError):
        return "oom"
    text = str(exc).lower()
    return "oom" if any(marker in text for marker in OOM_MARKERS) else "error"


def describe(exc: BaseException) -> str:
    """Type and message; compile failures say so (dynamo/inductor exceptions), and a SystemExit or
    KeyboardInterrupt says it came from the model's code (`bench.models.user.raised`)."""
    if isinstance(exc, (SystemExit, KeyboardInterrupt)):
        from bench.models.user import raised

        return raised(exc)[:ERROR_CHARS]
    origin = type(exc).__module__
    prefix = "compile failed: " if origin.startswith(("torch._dynamo", "torch._inductor")) else ""
    text = f"{prefix}{type(exc).__name__}: {exc}".strip()
    return text[:ERROR_CHARS]
