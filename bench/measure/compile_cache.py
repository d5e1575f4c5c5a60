"""torch.compile's on-disk cache, one folder per run.

Inductor keeps compiled kernels (and, under it, triton's) in `TORCHINDUCTOR_CACHE_DIR`, by default a
folder in /tmp shared by every process and rerun: a compile cell's first call is then cold or warm
depending on what ran before, and `first_call_ms` mixes the two. Giving each run its own folder
(`compile_cache_env(run_dir)`, merged into the environment of the run's workers) makes the first compile
of each graph cold and later ones warm; whether a first call compiled is read from inductor's own
FX-graph cache counters by the sweep (`compile_cache_cold`).
"""

from __future__ import annotations

from pathlib import Path

INDUCTOR_RUNTIMES: tuple[str, ...] = ("compile", "compile_frozen")
"""The sweep's runtimes that compile with Inductor (`bench.sweep.runtimes.compiled`), whose workers get
the run's cache folder."""
CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"
TRITON_ENV = "TRITON_CACHE_DIR"  # triton follows inductor's folder unless this is set: set it too
RUN_CACHE_FOLDER = ".inductor-cache"


def compile_cache_env(run_dir: str | Path) -> dict[str, str]:
    """Environment for a run's workers: inductor's (and so triton's) cache under the run folder."""
    folder = Path(run_dir).resolve() / RUN_CACHE_FOLDER
    return {CACHE_ENV: str(folder), TRITON_ENV: str(folder / "triton")}
