"""Loading checkpoints saved by the official implementations (or by us) into registry models.

Accepts a path or an in-memory object; unwraps the usual containers (`{'state_dict': ...}` from training
scripts, `{'model': ...}`, `{'model_state_dict': ...}`) and the `module.` prefix that DataParallel /
DistributedDataParallel add. A key mismatch raises `CheckpointMismatchError` naming the first missing and
unexpected keys, and whether the checkpoint looks like the other (training/deploy) form.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch import Tensor, nn

from bench.models.checkpoint_sources import SOURCES, map_keys
from bench.usage import UsageError, unknown

WRAPPER_KEYS: tuple[str, ...] = ("state_dict", "model", "model_state_dict")
PREFIXES: tuple[str, ...] = ("module.",)
SHOWN = 5
DEPLOY_MARKERS: tuple[str, ...] = ("rbr_reparam", "fused_conv", "dbb_reparam")
TRAIN_MARKERS: tuple[str, ...] = ("rbr_dense", "square_conv", "dbb_origin")

StateDictLike = Union[str, Path, Mapping[str, Any], nn.Module]


class CheckpointMismatchError(UsageError):
    """The checkpoint's keys or shapes do not match the model's."""


def _is_tensor_like(value: Any) -> bool:
    return isinstance(value, (Tensor, np.ndarray))


def _read(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint '{path}' does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"checkpoint '{path}' is empty (0 bytes): an interrupted download? fetch it again")
    with open(path, "rb") as handle:
        head = handle.read(2)
    if head != b"PK" and head[:1] != b"\x80":  # torch.save writes a zip archive (or, legacy, a pickle)
        raise ValueError(f"checkpoint '{path}' is not a torch checkpoint (a .pth/.pt file written by "
                         f"torch.save starts with a zip or pickle header; this starts with {head!r}): "
                         "an HTML page or text saved instead of the file?")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (EOFError, KeyError, IndexError, ValueError, OverflowError, struct.error, RuntimeError) as exc:
        # torch.load on text or a truncated file: EOFError, KeyError (a stray opcode byte), IndexError (a
        # pickle header with nothing after it), UnicodeDecodeError (a ValueError) or struct.error (cut in
        # a string or number), RuntimeError
        raise ValueError(
            f"checkpoint '{path}' is not a torch checkpoint (a .pth/.pt file written by torch.save): "
            f"{type(exc).__name__}: {exc}; is it truncated, or an HTML page saved instead of the file?"
        ) from exc
    except pickle.UnpicklingError as exc:
        raise ValueError(
            f"checkpoint '{path}' holds objects other than tensors and plain containers, so it was not "
            "unpickled; if you trust it, load it with torch.load(..., weights_only=False) and pass the dict"
        ) from exc


def unwrap_state_dict(obj: StateDictLike) -> dict[str, Tensor]:
    """The name -> tensor mapping inside `obj`, with wrappers and `module.` prefixes removed."""
    if isinstance(obj, (str, Path)):
        obj = _read(Path(obj))
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    while isinstance(obj, Mapping) and not all(_is_tensor_like(v) for v in obj.values()):
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            shown = ", ".join(map(str, list(obj)[:SHOWN]))
            raise ValueError(
                f"checkpoint holds no state dict: top-level keys {shown}; expected tensors or one of "
                f"the wrappers {', '.join(WRAPPER_KEYS)}"
            )
        obj = inner
    if not isinstance(obj, Mapping):
        raise ValueError(f"checkpoint is a {type(obj).__name__}, not a mapping of names to tensors")
    state = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in obj.items()}
    for prefix in PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _form_hint(missing: list[str], unexpected: list[str]) -> str:
    def has(keys: list[str], markers: tuple[str, ...]) -> bool:
        return any(m in k for k in keys for m in markers)

    if has(unexpected, DEPLOY_MARKERS) and has(missing, TRAIN_MARKERS):
        return " The checkpoint is a deploy form: build the model with deploy=True."
    if has(unexpected, TRAIN_MARKERS) and has(missing, DEPLOY_MARKERS):
        return " The checkpoint is a training form: build the model with deploy=False."
    return ""


def _check_keys(model_state: Mapping[str, Tensor], state: Mapping[str, Tensor], strict: bool) -> None:
    missing = [k for k in model_state if k not in state]
    unexpected = [k for k in state if k not in model_state]
    if strict and (missing or unexpected):
        raise CheckpointMismatchError(
            f"checkpoint does not match the model: {len(missing)} missing keys "
            f"(first: {', '.join(missing[:SHOWN]) or '-'}), {len(unexpected)} unexpected keys "
            f"(first: {', '.join(unexpected[:SHOWN]) or '-'}).{_form_hint(missing, unexpected)}"
        )
    wrong = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in model_state.items() if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if wrong:
        raise CheckpointMismatchError(
            f"checkpoint shapes do not match the model for {len(wrong)} tensors "
            f"(first: {'; '.join(wrong[:SHOWN])})"
        )


def load_checkpoint(
    model: nn.Module, path_or_state_dict: StateDictLike, strict: bool = True, source: str = "official"
) -> nn.Module:
    """Load a checkpoint into `model` (in place) and return `model`.

    `source` names where the checkpoint comes from (`checkpoint_sources.SOURCES`: "official", "timm");
    its keys are mapped onto this project's layout first. `strict=True` requires exactly the model's keys
    (after unwrapping and mapping); shapes must always match.
    """
    if source not in SOURCES:
        raise unknown("checkpoint source", source, SOURCES)
    state = map_keys(unwrap_state_dict(path_or_state_dict), source)
    _check_keys(model.state_dict(), state, strict)
    model.load_state_dict(state, strict=strict)
    return model
