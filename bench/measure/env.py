"""Environment fingerprint (what a number was measured on), hardware slug, and the `bench env` command.

`fingerprint()` returns a flat JSON-ready dict: GPU (name, UUID, SM count, memory, max and application
clocks, power limit, persistence mode), driver, CUDA, cuDNN, torch, Python, CPU model and threads, git
SHA. GPU keys are present with None on a CPU-only machine, so every env.json has the same keys.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import torch

from bench.measure import nvml_lib
from bench.measure.preflight import Check, preflight
from bench.usage import UsageError

__all__ = ["Check", "add_arguments", "fingerprint", "hardware_slug", "machine_load", "preflight", "run",
           "run_environment"]

REPO_ROOT = Path(__file__).resolve().parents[2]
GPU_KEYS: tuple[str, ...] = (
    "gpu_name", "gpu_uuid", "gpu_pci_bus_id", "gpu_compute_capability", "gpu_sm_count", "gpu_memory_mib",
    "gpu_memory_marketed_gb",
    "gpu_sm_clock_max_mhz", "gpu_mem_clock_max_mhz", "gpu_sm_clock_app_mhz", "gpu_sm_clock_app_default_mhz",
    "gpu_mem_clock_app_mhz", "gpu_power_limit_w", "gpu_power_limit_default_w", "gpu_persistence_mode",
    "driver_version", "cuda_driver_version",
)
CPU_NOISE = (r"\((r|tm)\)", r"@", r"\b\d+-core\b", r"\bprocessor\b", r"\bcpu\b")


def cpu_model() -> str:
    """`model name` from /proc/cpuinfo (Linux), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask: a container's or taskset's share), else all."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _cpu_ids() -> str:
    """'f25m1' from /proc/cpuinfo's `cpu family` and `model`: tells CPU generations apart when a virtual
    machine hides the model number ("AMD EPYC Processor")."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip().lower(), value.strip())
    except OSError:
        return ""
    family, model = fields.get("cpu family"), fields.get("model")
    return f"f{family}m{model}" if family and model and family.isdigit() and model.isdigit() else ""


def cpu_slug(model_name: str, cpus: int, ids: str = "") -> str:
    """'<model>-<cpus>c': "AMD EPYC 7B13 64-Core Processor" with 2 usable CPUs -> "amd-epyc-7b13-2c". A
    name without a model number gets the family/model ids: "AMD EPYC Processor" -> "amd-epyc-f25m1-2c"."""
    model = model_name.lower()
    for pattern in CPU_NOISE:
        model = re.sub(pattern, " ", model)
    base = slugify(model) or "unknown-cpu"
    if ids and not re.search(r"\d", base):
        base = f"{base}-{ids}"
    return f"{base}-{cpus}c"


MARKETED_MEMORY_GB: dict[str, tuple[int, ...]] = {
    "nvidia-h200": (141,), "nvidia-gh200": (96, 144), "nvidia-h100": (80, 94, 96), "nvidia-a100": (40, 80),
    "nvidia-l40s": (48,), "nvidia-l40": (48,), "nvidia-l4": (24,), "nvidia-a10g": (24,), "nvidia-a10": (24,),
    "tesla-t4": (16,), "tesla-v100": (16, 32),
}
"""Memory sizes (GB) a card is sold with, by the slug of the name torch reports. The memory a card reports
is what is left after ECC and the driver's reserve, in GiB: an H200 reports 143,771 MiB (140.4 GiB) of
the 141 GB it is sold as, an L4 22.5 GiB of 24 GB."""
MARKETED_TOLERANCE = 0.10
"""A reported size maps to the nearest marketed size of its card within this relative distance."""


def _card(slug: str) -> Optional[str]:
    """The longest MARKETED_MEMORY_GB key that is `slug` or its leading words ("nvidia-l4" is not
    "nvidia-l40s")."""
    keys = [k for k in MARKETED_MEMORY_GB if slug == k or slug.startswith(k + "-")]
    return max(keys, key=len) if keys else None


def marketed_memory_gb(name: str, memory_bytes: Optional[int]) -> Optional[int]:
    """The size a known card is sold with, for the memory it reports; None for an unknown card or size."""
    card = _card(slugify(name))
    if card is None or not memory_bytes:
        return None
    gib = memory_bytes / 2**30
    nearest = min(MARKETED_MEMORY_GB[card], key=lambda gb: abs(gb - gib))
    return nearest if abs(nearest - gib) <= MARKETED_TOLERANCE * gib else None


def gpu_slug(name: str, memory_bytes: Optional[int]) -> str:
    """The GPU name, plus its memory where the name does not say it: the size a known card is sold with
    ("NVIDIA H200" reporting 140.4 GiB -> "nvidia-h200-141gb"), else the reported GiB rounded
    ("-<n>gb"); "NVIDIA H100 80GB HBM3" stays "nvidia-h100-80gb-hbm3".

    Ids made before marketed sizes held the rounded GiB for every card ("nvidia-h200-140gb"); folders so
    named stay readable, and `bench compare` says when it meets both forms."""
    base = slugify(name)
    if memory_bytes and not re.search(r"\d+gb", base):
        gb = marketed_memory_gb(name, memory_bytes) or round(memory_bytes / 2**30)
        base = f"{base}-{gb}gb"
    return base


def hardware_slug(device: Optional[torch.device | str] = None) -> str:
    """Folder name of the hardware, which tells apart machines whose timings cannot be compared: the GPU's
    name and memory size (cuda:0, or `device`), else the CPU model and the CPUs usable by this process.

    Ids before this rule held only the name ("amd-epyc" for every EPYC of any core count); such runs stay
    readable, and `bench compare` explains the difference when it meets both forms (see
    `bench.compare.comparison.legacy_id_note`). A CPU `device` gives the CPU slug even where a GPU is present.
    """
    dev = torch.device(device) if device is not None else None
    if (dev is None or dev.type == "cuda") and torch.cuda.is_available():
        index = nvml_lib.torch_index(dev or torch.device("cuda", 0))
        props = torch.cuda.get_device_properties(index)
        return gpu_slug(torch.cuda.get_device_name(index), props.total_memory)
    return cpu_slug(cpu_model(), usable_cpus(), _cpu_ids())


class DeviceError(UsageError, RuntimeError):
    """The requested device is not there (e.g. --device cuda on a machine without CUDA)."""


def resolve_device(requested: str) -> str:
    """'auto' -> 'cuda' if torch sees a GPU, else 'cpu'; 'cuda' without CUDA is an error (`bench run`,
    `bench profile`)."""
    available = torch.cuda.is_available()
    if requested == "cuda" and not available:
        raise DeviceError("device 'cuda' requested but torch.cuda.is_available() is False "
                          f"(torch {torch.__version__}, CUDA build: {torch.version.cuda}); "
                          "use --device cpu or --device auto")
    if requested == "auto":
        return "cuda" if available else "cpu"
    return requested


def _git(*args: str) -> Optional[str]:
    try:
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state() -> dict[str, Any]:
    """SHA of HEAD and whether tracked files differ from it, when this package runs from a checkout."""
    top = _git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != REPO_ROOT:
        return {"git_sha": None, "git_dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"git_sha": _git("rev-parse", "HEAD"), "git_dirty": bool(status) if status is not None else None}


def _torch_gpu() -> dict[str, Any]:
    if not torch.cuda.is_available():
        return {}
    props = torch.cuda.get_device_properties(0)
    return {
        "gpu_name": props.name, "gpu_compute_capability": f"{props.major}.{props.minor}",
        "gpu_sm_count": props.multi_processor_count, "gpu_memory_mib": props.total_memory / 2**20,
        "gpu_memory_marketed_gb": marketed_memory_gb(props.name, props.total_memory),
    }


def _nvml_gpu() -> dict[str, Any]:
    handle = nvml_lib.handle_for(torch.device("cuda", 0), warn=False)
    lib = nvml_lib.library(warn=False)
    if handle is None or lib is None:
        return {}
    q = nvml_lib.query
    pci = q(lib.nvmlDeviceGetPciInfo, handle)
    cuda_driver = q(lib.nvmlSystemGetCudaDriverVersion)
    limit = q(lib.nvmlDeviceGetEnforcedPowerLimit, handle)
    default = q(lib.nvmlDeviceGetPowerManagementDefaultLimit, handle)
    persistence = q(lib.nvmlDeviceGetPersistenceMode, handle)
    memory = q(lib.nvmlDeviceGetMemoryInfo, handle)
    return {
        "gpu_name": q(lib.nvmlDeviceGetName, handle), "gpu_uuid": q(lib.nvmlDeviceGetUUID, handle),
        "gpu_pci_bus_id": _text(pci.busId) if pci is not None else None,
        "gpu_memory_mib": memory.total / 2**20 if memory is not None else None,
        "gpu_sm_clock_max_mhz": q(lib.nvmlDeviceGetMaxClockInfo, handle, lib.NVML_CLOCK_SM),
        "gpu_mem_clock_max_mhz": q(lib.nvmlDeviceGetMaxClockInfo, handle, lib.NVML_CLOCK_MEM),
        "gpu_sm_clock_app_mhz": q(lib.nvmlDeviceGetApplicationsClock, handle, lib.NVML_CLOCK_SM),
        "gpu_sm_clock_app_default_mhz": q(lib.nvmlDeviceGetDefaultApplicationsClock, handle, lib.NVML_CLOCK_SM),
        "gpu_mem_clock_app_mhz": q(lib.nvmlDeviceGetApplicationsClock, handle, lib.NVML_CLOCK_MEM),
        "gpu_power_limit_w": limit / 1000 if limit is not None else None,
        "gpu_power_limit_default_w": default / 1000 if default is not None else None,
        "gpu_persistence_mode": bool(persistence) if persistence is not None else None,
        "driver_version": q(lib.nvmlSystemGetDriverVersion),
        "cuda_driver_version": f"{cuda_driver // 1000}.{cuda_driver % 1000 // 10}" if cuda_driver else None,
    }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _gpu() -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(GPU_KEYS)
    out.update(_torch_gpu())
    out.update({k: v for k, v in _nvml_gpu().items() if v is not None})
    return out


def fingerprint() -> dict[str, Any]:
    """Everything that decides what a measurement means on this machine (flat, JSON-ready)."""
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    usable = usable_cpus()
    return {
        "hardware": hardware_slug(),
        "gpu_count": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        **_gpu(),
        "cuda_version": torch.version.cuda,
        "cudnn_version": str(cudnn) if cudnn is not None else None,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "torch_num_threads": torch.get_num_threads(),
        **git_state(),
    }


def run_environment() -> dict[str, Any]:
    """What a run's `env.json` holds: the fingerprint, plus the preflight checks taken as the run began
    (`preflight`: a list of {name, verdict, detail}), so a report can show the state of the machine (load,
    other GPU processes, clocks, temperature) beside a noisy or throttled cell."""
    return {**fingerprint(), "preflight": [check.to_dict() for check in preflight()]}


def cpu_pressure_avg10() -> Optional[float]:
    """`some avg10` of /proc/pressure/cpu (Linux PSI): % of the last 10 s in which a runnable task waited
    for a CPU; None where the kernel has no PSI."""
    try:
        for line in Path("/proc/pressure/cpu").read_text().splitlines():
            if line.startswith("some"):
                return float(dict(f.split("=") for f in line.split()[1:])["avg10"])
    except (OSError, ValueError, KeyError):
        return None
    return None


def machine_load() -> dict[str, Optional[float]]:
    """The machine's load now, for the row of the cell that just ended: 1-minute load average and CPU
    pressure (`Result.load_avg_1m`, `Result.cpu_pressure_avg10`)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"load_avg_1m": load, "cpu_pressure_avg10": cpu_pressure_avg10()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a preflight check fails")


def run(args: argparse.Namespace) -> int:
    env, checks = fingerprint(), preflight()
    if args.json:
        json.dump({"fingerprint": env, "preflight": [c.to_dict() for c in checks]}, sys.stdout, indent=2)
        print()
    else:
        width = max(len(key) for key in env)
        print("fingerprint")
        for key, value in env.items():
            print(f"  {key:<{width}}  {'-' if value is None else value}")
        print("preflight")
        for check in checks:
            print(f"  {check.line()}")
    failed = any(c.verdict == "fail" for c in checks)
    return 1 if failed and args.strict else 0
