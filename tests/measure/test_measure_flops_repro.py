"""MACs against the analytic count, the peak table, and the dtype helpers (switches: test_measure_precision_switches.py)."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from bench.measure.flops import PEAKS, count_macs, peak_tflops, tflops_achieved
from bench.measure.precision_switches import autocast_context, dtype_for


@pytest.mark.parametrize("groups,stride", [(1, 1), (1, 2), (4, 1)])
def test_conv_macs_are_analytic(groups, stride):
    conv = nn.Conv2d(8, 16, kernel_size=3, stride=stride, padding=1, groups=groups, bias=True)
    x = torch.randn(2, 8, 20, 20)
    out = (20 + 2 - 3) // stride + 1
    assert count_macs(conv, x) == 2 * 16 * out * out * (8 // groups) * 3 * 3


def test_linear_macs_are_analytic():
    assert count_macs(nn.Linear(64, 10), torch.randn(5, 64)) == 5 * 64 * 10


def test_counting_leaves_a_training_model_untouched():
    model = nn.Sequential(nn.Conv2d(3, 4, 1, bias=False), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 9, 2))
    model.train()
    before = model[1].running_mean.clone()
    macs = count_macs(model, torch.randn(1, 3, 3, 3))
    assert macs == 1 * 4 * 9 * 3 + 4 * 9 * 2
    assert model.training and torch.equal(model[1].running_mean, before)


@pytest.mark.parametrize("name,precision,expected", [
    ("NVIDIA H100 80GB HBM3", "bf16", 989.5),
    ("NVIDIA H100 80GB HBM3", "fp32", 67.0),
    ("NVIDIA H100 PCIe", "tf32", 378.0),
    ("NVIDIA H200", "fp16", 989.5),
    ("NVIDIA A100-SXM4-80GB", "tf32", 156.0),
    ("NVIDIA A100-PCIE-40GB", "fp16", 312.0),
    ("NVIDIA L4", "bf16", 121.0),
    ("NVIDIA GeForce RTX 4090", "fp16", 165.2),
    ("Tesla V100-SXM2-16GB", "fp16", 125.0),
    ("Tesla V100-PCIE-32GB", "fp32", 14.0),
    ("NVIDIA GeForce GTX 1080 Ti", "fp32", 11.34),
    ("NVIDIA GeForce GTX 1080 Ti", "fp16", 0.177),
])
def test_peak_table_lookups(name, precision, expected):
    assert peak_tflops(name, precision) == expected


@pytest.mark.parametrize("name,precision", [
    ("NVIDIA GeForce GTX 1080 Ti", "tf32"), ("NVIDIA GeForce GTX 1080 Ti", "bf16"),
    ("Tesla V100-SXM2-16GB", "bf16"), ("NVIDIA L40S", "fp32"), ("AMD Instinct MI300X", "fp16"),
])
def test_missing_math_or_unknown_gpu_is_none(name, precision):
    assert peak_tflops(name, precision) is None


def test_peak_table_is_sane():
    assert peak_tflops("NVIDIA H100 80GB HBM3", "fp32") < peak_tflops("NVIDIA H100 80GB HBM3", "tf32")
    for peak in PEAKS:
        assert peak.fp32 > 0 and peak.fp16 > 0
        assert peak.int8 is None or peak.int8 >= 1.99 * peak.fp16  # int8 tensor math: at least twice fp16's
    assert peak_tflops("NVIDIA L4", "int8") == 242.5 and peak_tflops("Tesla V100-SXM2-16GB", "int8") is None
    with pytest.raises(ValueError, match="precision 'fp8' is unknown; known: fp32, tf32, fp16, bf16, int8"):
        peak_tflops("NVIDIA L4", "fp8")


def test_tflops_achieved():
    assert tflops_achieved(1e12, 2000.0) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        tflops_achieved(1, 0.0)


def test_dtype_and_autocast_helpers():
    assert dtype_for("tf32") is torch.float32 and dtype_for("bf16") is torch.bfloat16
    assert isinstance(autocast_context("fp32", "cpu"), contextlib.nullcontext)
    with autocast_context("bf16", "cpu"):
        y = nn.Linear(4, 4)(torch.randn(2, 4))
    assert y.dtype is torch.bfloat16
