"""torch.compile's on-disk cache: one folder per run, never inside the run folder.

Inductor keeps compiled kernels (and, under it, triton's) in `TORCHINDUCTOR_CACHE_DIR`, by default a
folder in /tmp shared by every process and rerun: a compile cell's first call is then cold or warm
depending on what ran before, and `first_call_ms` mixes the two. Each run gets a folder of its own, so the
first compile of each graph in a run is cold and later ones warm; whether a first call compiled is read
from inductor's own FX-graph cache counters by the sweep (`compile_cache_cold`).

The folder is not in the run folder: inductor loads what it finds in its cache (unpickles graphs, imports
generated Python, loads compiled libraries), so a results folder holding one would run code from whoever
handed it over. It lives in the user's cache directory, `$XDG_CACHE_HOME/repbench/compile/<run key>`
(`~/.cache` without XDG_CACHE_HOME), created 0700, on the machine whose worker compiles: the sweep gives
its workers the run's key (`compile_cache_env`) and the worker places the folder (`apply_compile_cache`)
before it imports torch, so a Ray node uses its own user's cache directory. The key names the run folder
(`run_key`), so resuming a run finds the graphs it compiled before (warm, as the column then says); two
folders of the same run id do not share one.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import MutableMapping, Optional

INDUCTOR_RUNTIMES: tuple[str, ...] = ("compile", "compile_frozen")
"""The sweep's runtimes that compile with Inductor (`bench.sweep.worker.runtimes.compiled`), whose workers get
the run's cache folder."""
CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"
TRITON_ENV = "TRITON_CACHE_DIR"  # triton follows inductor's folder unless this is set: set it too
RUN_KEY_ENV = "BENCH_COMPILE_CACHE_RUN"
"""Set for a run's workers: the run's key, which the worker turns into its cache folder."""


def run_key(run_dir: str | Path) -> str:
    """`<run folder name>-<first 12 hex digits of sha256 of its absolute path>`: one key per run folder."""
    path = Path(run_dir).resolve()
    return f"{path.name}-{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"


def cache_root() -> Path:
    """This user's compile caches: `$XDG_CACHE_HOME/repbench/compile` (an absolute XDG_CACHE_HOME only, as
    the XDG spec says), else `~/.cache/repbench/compile`."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".cache") / "repbench" / "compile"


def compile_cache_env(run_dir: str | Path) -> dict[str, str]:
    """Environment for a run's workers: the run's key (`apply_compile_cache` places the folder)."""
    return {RUN_KEY_ENV: run_key(run_dir)}


def apply_compile_cache(environ: Optional[MutableMapping[str, str]] = None) -> Optional[Path]:
    """In a worker, before torch is imported: point inductor and triton at the run's folder under this
    user's cache directory (created 0700); None, and nothing changed, without a run key."""
    environ = os.environ if environ is None else environ
    key = environ.get(RUN_KEY_ENV, "")
    if not key:
        return None
    if os.sep in key or key in (".", ".."):
        raise ValueError(f"{RUN_KEY_ENV}={key!r} is not one folder name; it comes from compile_cache_env")
    folder = cache_root() / key
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    environ[CACHE_ENV] = str(folder)
    environ[TRITON_ENV] = str(folder / "triton")
    return folder
