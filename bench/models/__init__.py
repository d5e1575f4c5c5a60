"""Network definitions and the registry of names the harness sweeps.

`create(name, deploy=False, **kwargs)`, `names()`, `info(name)`; official-checkpoint loading in
`checkpoint`; the RepVGG paper's reference figures in `paper` (pure data); `randomize_bn_` in `init` for
tests and correctness gates; `build_form` in `build`, a model as a sweep cell measures it; `invariants`,
the deterministic counts CI checks. Nothing here times anything.

Names are imported on first use (PEP 562), so `bench.models.paper` can be read without importing torch:
`bench.report` uses it and must stay torch-free.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "build_form": "bench.models.build",
    "deploy_form": "bench.models.build",
    "training_form": "bench.models.build",
    "CheckpointMismatchError": "bench.models.checkpoint",
    "load_checkpoint": "bench.models.checkpoint",
    "randomize_bn_": "bench.models.init",
    "PaperFigures": "bench.models.paper",
    "ModelInfo": "bench.models.registry",
    "create": "bench.models.registry",
    "info": "bench.models.registry",
    "names": "bench.models.registry",
    "register": "bench.models.registry",
    "register_model": "bench.models.registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bench.models' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
