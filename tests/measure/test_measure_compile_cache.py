"""A compile cache folder per run, in the user's cache directory (never in the run folder): the key the
sweep passes, the folder a worker places, and inductor and triton using it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from bench.measure.compile_cache import (CACHE_ENV, RUN_KEY_ENV, TRITON_ENV, apply_compile_cache,
                                         compile_cache_env, run_key)


def test_the_key_names_the_run_folder_and_differs_between_folders_of_one_run_id(tmp_path):
    env = compile_cache_env(tmp_path / "a" / "run-1")
    assert env == {RUN_KEY_ENV: run_key(tmp_path / "a" / "run-1")}
    assert env[RUN_KEY_ENV].startswith("run-1-") and "/" not in env[RUN_KEY_ENV]
    assert run_key(tmp_path / "b" / "run-1") != env[RUN_KEY_ENV]


def test_a_worker_places_the_folder_under_the_users_cache_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    environ = dict(compile_cache_env(tmp_path / "results" / "run-1"))
    folder = apply_compile_cache(environ)
    assert folder == tmp_path / "cache" / "repbench" / "compile" / run_key(tmp_path / "results" / "run-1")
    assert environ[CACHE_ENV] == str(folder) and environ[TRITON_ENV] == str(folder / "triton")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and not (tmp_path / "results").exists()
    assert apply_compile_cache({}) is None
    with pytest.raises(ValueError, match="not one folder name"):
        apply_compile_cache({RUN_KEY_ENV: "../elsewhere"})


def test_inductor_and_triton_use_the_runs_folder(tmp_path):
    environ = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), **compile_cache_env(tmp_path / "run")}
    code = ("from bench.measure.compile_cache import apply_compile_cache\napply_compile_cache()\n"
            "from torch._inductor.runtime.cache_dir_utils import cache_dir, triton_cache_dir\n"
            "print(cache_dir()); print(triton_cache_dir(0))")
    out = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    folder = tmp_path / "repbench" / "compile" / run_key(tmp_path / "run")
    assert out[0] == str(folder) and out[1].startswith(str(folder) + os.sep)
