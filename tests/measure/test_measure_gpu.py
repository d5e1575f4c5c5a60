"""Measurement on a real NVIDIA GPU (`pytest -m gpu`): agreement with triton's do_bench, CUDA graphs,
exact peak memory, NVML telemetry, fingerprint."""

from __future__ import annotations

import gc

import pytest
import torch

from bench.measure.memory import MIB, measure_memory, take_baseline
from bench.measure.nvml import TelemetrySampler
from bench.measure.repro import apply_precision_settings
from bench.measure.timing import TimingConfig, measure_latency

pytestmark = pytest.mark.gpu

DEVICE = torch.device("cuda", 0)


def _conv_workload(batch: int = 64, channels: int = 128, size: int = 56):
    """A conv of about 30 GMACs: a millisecond or more in fp32, so launch overhead does not matter."""
    apply_precision_settings("fp32")
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1).to(DEVICE).eval()
    x = torch.randn(batch, channels, size, size, device=DEVICE)

    def call() -> torch.Tensor:
        with torch.inference_mode():
            return conv(x)

    return call


def test_pipelined_agrees_with_triton_do_bench():
    """do_bench zeroes a 256 MB buffer before every call (an L2 flush) and our loop does not; here that
    costs nothing: the conv is compute-bound (~59 GFLOP) and its 100 MB input and output exceed H100's
    50 MB L2 anyway, so both read cold data. A small, L2-resident workload would not agree."""
    import triton.testing

    fn = _conv_workload()
    config = TimingConfig(min_time_s=1.0, target_rel_ci=0.01, timeout_s=10.0)
    ours = measure_latency(fn, DEVICE, "pipelined", config)
    reference = triton.testing.do_bench(fn, warmup=100, rep=1000, return_mode="median")
    assert ours.median_ms == pytest.approx(reference, rel=0.03), ours.summary()
    assert ours.stop_reason in ("converged", "timeout", "max_samples")
    assert ours.first_call_ms is not None and ours.warmup_iters > 0


def test_synchronized_regime_records_host_enqueue_time():
    fn = _conv_workload(batch=8)
    stats = measure_latency(fn, DEVICE, "synchronized", TimingConfig(min_time_s=0.3, timeout_s=5.0))
    assert stats.host_enqueue_ms_median is not None
    assert 0 < stats.host_enqueue_ms_median <= stats.median_ms


def test_cuda_graph_is_faster_than_pipelined_for_batch1_repvgg_a0_deploy():
    from bench.models import create

    apply_precision_settings("fp32")
    model = create("repvgg_a0", deploy=True).to(DEVICE).eval()
    x = torch.randn(1, 3, 224, 224, device=DEVICE)

    def call() -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    config = TimingConfig(min_time_s=1.0, timeout_s=10.0, graph_calls=20)
    eager = measure_latency(call, DEVICE, "pipelined", config)
    graph = measure_latency(call, DEVICE, "cudagraph", config)
    assert graph.calls_per_sample == 20
    assert graph.warmup_iters >= config.graph_eager_warmup
    assert graph.median_ms < eager.median_ms, f"{graph.summary()} vs {eager.summary()}"


def test_peak_allocated_is_exact_to_the_byte():
    gc.collect()
    torch.cuda.empty_cache()  # earlier tests' cached blocks would otherwise leave with the pass's empty_cache
    baseline = take_baseline(DEVICE)
    keep = torch.empty(3 * MIB + 512, dtype=torch.uint8, device=DEVICE)
    n_bytes = 96 * MIB + 7 * 512  # a multiple of the allocator's 512-byte block

    def allocate() -> torch.Tensor:
        return torch.empty(n_bytes, dtype=torch.uint8, device=DEVICE)

    gc.collect()  # the pass collects garbage first; tensors freed by that must not count in `before`
    before = torch.cuda.memory_allocated(DEVICE)
    stats = measure_memory(allocate, DEVICE, baseline, calls=1)
    assert stats.peak_allocated_mib * MIB == before + n_bytes
    assert stats.peak_reserved_mib >= stats.peak_allocated_mib
    assert stats.peak_rss_mib > 0
    if stats.nvml_device_delta_mib is not None:
        assert stats.nvml_device_delta_mib >= n_bytes / MIB * 0.99
    del keep


def test_nvml_telemetry_during_a_window():
    fn = _conv_workload(batch=32)
    with TelemetrySampler(DEVICE, interval_s=0.02) as sampler:
        measure_latency(fn, DEVICE, "pipelined", TimingConfig(min_time_s=0.5, timeout_s=2.0))
    result = sampler.result
    assert result.n_polls >= 2
    assert result.power_w_mean is not None and result.power_w_mean > 0
    assert result.sm_clock_mhz_mean is not None and result.sm_clock_mhz_mean > 0
    assert result.mem_clock_mhz_mean is not None and result.temperature_c_max is not None
    assert isinstance(result.throttled, bool)
    if torch.cuda.get_device_properties(DEVICE).major >= 7:  # energy counter: Volta and newer
        assert result.energy_j is not None and result.energy_j > 0


def test_fingerprint_describes_the_gpu():
    from bench.measure.env import fingerprint, preflight

    env = fingerprint()
    assert env["gpu_name"] and env["gpu_sm_count"] > 0 and env["gpu_memory_mib"] > 0
    assert env["hardware"].startswith("nvidia")
    assert next(c for c in preflight() if c.name == "gpu").verdict == "pass"
