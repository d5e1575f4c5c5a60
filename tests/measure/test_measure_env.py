"""Environment fingerprint, hardware slug, preflight checks and the `bench env` command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
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


def test_hardware_ids_tell_apart_machines_whose_timings_differ():
    from bench.measure.env import cpu_slug, gpu_slug

    assert cpu_slug("AMD EPYC 7B13 64-Core Processor", 2) == "amd-epyc-7b13-2c"
    assert cpu_slug("AMD EPYC 7B13 64-Core Processor", 2) != cpu_slug("AMD EPYC 7B13 64-Core Processor", 64)
    assert cpu_slug("AMD EPYC Processor", 2, "f25m1") == "amd-epyc-f25m1-2c"
    assert cpu_slug("AMD EPYC Processor", 2, "f25m1") != cpu_slug("AMD EPYC Processor", 2, "f23m49")
    assert gpu_slug("NVIDIA H100 80GB HBM3", 80 * 2**30) == "nvidia-h100-80gb-hbm3"
    assert gpu_slug("NVIDIA H200", 141 * 2**30) == "nvidia-h200-141gb"
    assert gpu_slug("NVIDIA A100-SXM4-40GB", 40 * 2**30) != gpu_slug("NVIDIA A100-SXM4-80GB", 80 * 2**30)
    import os

    if hasattr(os, "sched_getaffinity"):
        assert hardware_slug("cpu").endswith(f"-{len(os.sched_getaffinity(0))}c")


def test_a_known_gpu_id_names_the_memory_it_is_sold_with_not_the_gib_it_reports():
    """What the cards report (torch's total_memory): an H200 143,771 MiB = 140.4 GiB, sold as 141 GB; an L4
    22.5 GiB of 24 GB. The docs' and Ray's examples use these ids. An unknown card keeps its GiB."""
    from bench.measure.env import gpu_slug, marketed_memory_gb

    assert gpu_slug("NVIDIA H200", 143_771 * 2**20) == "nvidia-h200-141gb"
    assert marketed_memory_gb("NVIDIA H200", 143_771 * 2**20) == 141
    assert gpu_slug("NVIDIA L4", 23_034 * 2**20) == "nvidia-l4-24gb"
    assert gpu_slug("NVIDIA L40S", 46_068 * 2**20) == "nvidia-l40s-48gb"  # not taken for an L4
    assert gpu_slug("NVIDIA H100 PCIe", 81_559 * 2**20) == "nvidia-h100-pcie-80gb"
    assert gpu_slug("NVIDIA H100 NVL", 95_830 * 2**20) == "nvidia-h100-nvl-94gb"
    assert gpu_slug("NVIDIA RTX 6000 Ada Generation", 48_140 * 2**20) == "nvidia-rtx-6000-ada-generation-47gb"
    assert marketed_memory_gb("NVIDIA H200", 70 * 2**30) is None  # far from any size the card is sold with


def test_compare_says_when_two_gpu_ids_differ_only_by_how_memory_was_counted():
    from bench.compare.comparison import legacy_id_note

    note = legacy_id_note("nvidia-h200-140gb", "nvidia-h200-141gb")
    assert "may be one GPU" in note and "141 GB" in note
    assert legacy_id_note("nvidia-a100-sxm4-40gb", "nvidia-a100-sxm4-80gb") == ""  # two cards


def test_machine_load_reads_load_average_and_cpu_pressure():
    from bench.measure.env import machine_load

    load = machine_load()
    assert load["load_avg_1m"] is not None and load["load_avg_1m"] >= 0
    if Path("/proc/pressure/cpu").is_file():
        assert 0 <= load["cpu_pressure_avg10"] <= 100


@pytest.mark.gpu
def test_the_gpu_hardware_id_carries_its_memory_size():
    props = torch.cuda.get_device_properties(0)
    slug = hardware_slug("cuda")
    assert slug.startswith(slugify(props.name)[:8])
    assert re.search(r"\d+gb", slug), slug
    assert hardware_slug("cpu") != slug and hardware_slug("cpu").endswith("c")
    if props.name == "NVIDIA H200":
        assert slug == "nvidia-h200-141gb", (slug, props.total_memory)  # the docs' and Ray's examples


def test_preflight_warns_on_the_software_power_cap_alone_and_fails_on_hardware_slowdowns():
    """Recorded reason bits: right after a sweep the SW power cap is often still set; that is no reason to
    refuse to measure (each row judges its own clocks). Thermal and hardware slowdowns are."""
    from bench.measure.preflight import clocks_check

    assert clocks_check(0x004, 1980, 1980).verdict == "warn"
    assert "power cap" in clocks_check(0x004, 1980, 1980).detail
    for bit in (0x008, 0x020, 0x040, 0x080):
        assert clocks_check(bit | 0x004, 1980, 1980).verdict == "fail"
    assert clocks_check(0x001, 1980, 1980).verdict == "pass"  # idle
    assert clocks_check(None, 1755, 1980).verdict == "warn"  # application clock changed
    assert clocks_check(None, None, None).verdict == "pass"
