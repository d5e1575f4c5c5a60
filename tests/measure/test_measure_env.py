"""Environment fingerprint, hardware slug, preflight checks and the `bench env` command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import torch

from bench.measure.env import GPU_KEYS, fingerprint, hardware_slug, slugify
from bench.measure.preflight import VERDICTS, Check, preflight

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {
    "hardware", "gpu_count", *GPU_KEYS, "cuda_version", "cudnn_version", "torch_version", "python_version",
    "cpu_model", "cpu_count", "torch_num_threads", "git_sha",
}


def test_fingerprint_has_every_key_and_is_json_ready():
    env = fingerprint()
    assert REQUIRED <= set(env)
    assert env["torch_version"] == torch.__version__
    assert env["torch_num_threads"] == torch.get_num_threads()
    assert env["hardware"] == hardware_slug()
    json.dumps(env)
    if env["git_sha"] is not None:
        assert re.fullmatch(r"[0-9a-f]{40}", env["git_sha"])
    if not torch.cuda.is_available():
        assert env["gpu_count"] == 0 and all(env[k] is None for k in GPU_KEYS)


def test_hardware_slug_is_a_slug():
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", hardware_slug())
    assert hardware_slug("cpu") == hardware_slug("cpu")
    assert slugify("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"


def test_preflight_checks_are_well_formed():
    checks = preflight()
    assert checks and all(isinstance(c, Check) and c.verdict in VERDICTS for c in checks)
    names = [c.name for c in checks]
    assert len(names) == len(set(names))
    if not torch.cuda.is_available():
        gpu = next(c for c in checks if c.name == "gpu")
        assert gpu.verdict == "warn" and "CPU-only" in gpu.detail


def test_env_command_exits_zero_and_prints_json():
    text = subprocess.run([sys.executable, "-m", "bench", "env"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert text.returncode == 0, text.stderr
    assert "fingerprint" in text.stdout and "preflight" in text.stdout
    as_json = subprocess.run([sys.executable, "-m", "bench", "env", "--json"], cwd=ROOT, capture_output=True,
                             text=True, timeout=120)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert REQUIRED <= set(data["fingerprint"])
    assert all(set(c) == {"name", "verdict", "detail"} for c in data["preflight"])
