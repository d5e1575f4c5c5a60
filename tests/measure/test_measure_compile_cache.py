"""A compile cache folder per run: the environment that points inductor at it, and cold/warm."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.measure.compile_cache import CACHE_ENV, compile_cache_env


def test_the_environment_points_both_caches_under_the_run(tmp_path):
    env = compile_cache_env(tmp_path / "run")
    folder = (tmp_path / "run").resolve() / ".inductor-cache"
    assert env == {CACHE_ENV: str(folder), "TRITON_CACHE_DIR": str(folder / "triton")}


def test_inductor_and_triton_use_the_run_folder(tmp_path):
    env = compile_cache_env(tmp_path)
    code = ("from torch._inductor.runtime.cache_dir_utils import cache_dir, triton_cache_dir\n"
            "print(cache_dir()); print(triton_cache_dir(0))")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    assert out[0] == env[CACHE_ENV]
    assert out[1].startswith(env[CACHE_ENV] + os.sep)
