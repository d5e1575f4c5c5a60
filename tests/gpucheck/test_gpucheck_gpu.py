"""gpu-check's NVML probe on a GPU machine: it reads device 0 through the same NVML handle the cells use."""

from __future__ import annotations

import pytest

from bench.gpucheck import nvml_probe
from bench.measure import nvml_lib


@pytest.mark.gpu
def test_nvml_probe_names_the_device_torch_sees():
    import torch

    if nvml_lib.library(warn=False) is None:
        pytest.skip(f"NVML is unavailable here: {nvml_lib.unavailable_reason()}")
    report = nvml_probe.probe()
    assert report["nvml"] is True and report.get("handle", "found") is not None, report
    assert report["name"] not in (None, "unsupported"), report
    # NVML and torch may spell the name differently ("NVIDIA H200" vs "NVIDIA H200"): compare a word of it
    assert set(str(report["name"]).split()) & set(torch.cuda.get_device_name(0).split()), report
