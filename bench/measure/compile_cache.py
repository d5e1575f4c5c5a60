"""torch.compile's on-disk cache, one folder per run, and whether a cell found it cold.

Inductor keeps compiled kernels (and, under it, triton's) in `TORCHINDUCTOR_CACHE_DIR`, by default a
folder in /tmp shared by every process and rerun: a compile cell's first call is then cold or warm
depending on what ran before, and `first_call_ms` mixes the two. Giving each run its own folder
(`compile_cache_env(run_dir)`, merged into every cell subprocess's environment) makes the first compile
cell of each graph cold and later ones warm, and `cache_state()` read at the start of a cell says which.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional

CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"
TRITON_ENV = "TRITON_CACHE_DIR"  # triton follows inductor's folder unless this is set: set it too
RUN_CACHE_FOLDER = "inductor_cache"


def compile_cache_env(run_dir: str | Path) -> dict[str, str]:
    """Environment for a run's cell subprocesses: inductor's (and so triton's) cache under the run."""
    folder = Path(run_dir).resolve() / RUN_CACHE_FOLDER
    return {CACHE_ENV: str(folder), TRITON_ENV: str(folder / "triton")}


def cache_state(env: Mapping[str, str] = os.environ) -> Optional[str]:
    """"cold" (the folder is missing or empty), "warm" (it holds entries), or None where no folder was
    set (the shared default cache: cold or warm is unknown)."""
    folder = env.get(CACHE_ENV)
    if not folder:
        return None
    path = Path(folder)
    return "warm" if path.is_dir() and any(path.iterdir()) else "cold"
