"""A failure of a cell as a row: its status ('oom' or 'error') and a short text that says what happened."""

from __future__ import annotations

from bench.measure.memory import is_out_of_memory

ERROR_CHARS = 1500


def classify(exc: BaseException) -> str:
    """'oom' for what `bench.measure.memory.is_out_of_memory` calls running out of memory, else 'error'."""
    return "oom" if is_out_of_memory(exc) else "error"


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
