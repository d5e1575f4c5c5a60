"""Real results for the report and notebook tests.

Preferred: the committed `results/` folder when it holds at least one run. Otherwise a tiny real CPU sweep
is run here, into a temporary folder: the blog network and RepVGG-A0, both forms, batch 2, 32x32 inputs,
with short timing windows, under the name `blog` (so the blog notebook finds it as a blog-preset run).
These are measurements, not made-up numbers; they are small so that CI stays fast (4 cells).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "results"
TINY_SWEEP = """\
name = "blog"
description = "tiny CPU run for the report tests: the blog network and RepVGG-A0, both forms"

[axes]
model = ["blog_repvgg", "repvgg_a0"]
form = ["train", "deploy"]
mode = ["infer"]
batch_size = [2]
precision = ["fp32"]
memory_format = ["contiguous"]
runtime = ["eager"]
resolution = [32]

[run]
device = "cpu"
cell_timeout_s = 120
num_threads = 2

[timing]
min_time_s = 0.1
timeout_s = 1.0
warmup_max_s = 0.5
"""


def _has_runs(root: Path) -> bool:
    return any(root.glob("*/*/summary.parquet"))


def _python_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


@pytest.fixture(scope="session")
def real_results(tmp_path_factory) -> Path:
    """A results root holding real runs (committed ones, else a tiny CPU sweep made now)."""
    if _has_runs(COMMITTED):
        return COMMITTED
    root = tmp_path_factory.mktemp("results")
    config = tmp_path_factory.mktemp("config") / "tiny_blog.toml"
    config.write_text(TINY_SWEEP, encoding="utf-8")
    command = [sys.executable, "-m", "bench", "run", "--config", str(config), "--out", str(root)]
    done = subprocess.run(command, cwd=REPO, env=_python_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"tiny sweep failed: {' '.join(command)}\n{done.stdout}\n{done.stderr}"
    assert _has_runs(root), f"the tiny sweep wrote no summary.parquet under {root}"
    return root
