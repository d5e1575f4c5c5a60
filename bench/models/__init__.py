"""Network definitions and the registry of names the harness sweeps.

`create(name, deploy=False, **kwargs)`, `names()`, `info(name)`; official-checkpoint loading in
`checkpoint`; the RepVGG paper's reference figures in `paper`; `randomize_bn_` in `init` for tests and
correctness gates. Nothing here measures anything.
"""

from bench.models.checkpoint import CheckpointMismatchError, load_checkpoint
from bench.models.init import randomize_bn_
from bench.models.paper import PaperFigures
from bench.models.registry import ModelInfo, create, info, names, register, register_model

__all__ = [
    "CheckpointMismatchError", "ModelInfo", "PaperFigures", "create", "info", "load_checkpoint", "names",
    "randomize_bn_", "register", "register_model",
]
