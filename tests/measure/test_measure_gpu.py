"""Measurement on a real NVIDIA GPU (`pytest -m gpu`): agreement with triton's do_bench, CUDA graphs,
exact peak memory, NVML telemetry, fingerprint."""

from __future__ import annotations

import gc

import pytest
import torch

from bench.measure import nvml_lib
from bench.measure.memory import MIB, measure_memory, take_baseline
from bench.measure.nvml import TelemetrySampler
from bench.measure.precision_switches import apply_precision_settings
from bench.measure.timing import TimingConfig, measure_latency
from tests.measure.nvml_support import require

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


def test_cudagraph_memory_is_measured_around_capture_and_replay():
    """The graph's private pool holds each call's output through capture and replay; the pass frees the
    graph afterwards, so nothing stays allocated."""
    baseline = take_baseline(DEVICE)
    n_bytes = 64 * MIB
    x = torch.ones(n_bytes // 4, device=DEVICE)
    gc.collect()
    before = torch.cuda.memory_allocated(DEVICE)
    stats = measure_memory(lambda: x * 2, DEVICE, baseline, regime="cudagraph", graph_calls=3)
    assert stats.peak_allocated_mib * MIB >= before + n_bytes
    assert stats.peak_allocated_mib * MIB <= before + 3 * n_bytes  # outputs reused inside the capture
    assert torch.cuda.memory_allocated(DEVICE) == before


@pytest.fixture(scope="module")
def telemetry():
    """One timed phase under the NVML sampler, shared by the per-quantity tests below."""
    if nvml_lib.handle_for(DEVICE, warn=False) is None:
        pytest.skip(f"NVML unavailable here ({nvml_lib.unavailable_reason()}), or no NVML device for {DEVICE}")
    fn = _conv_workload(batch=32)
    fn()
    torch.cuda.synchronize(DEVICE)
    sampler = TelemetrySampler(DEVICE, interval_s=0.02)
    stats = measure_latency(fn, DEVICE, "pipelined", TimingConfig(min_time_s=0.5, timeout_s=2.0),
                            timed_window=lambda: sampler)  # the timed phase only: warm-up is outside
    assert sampler.result.duration_s is not None
    assert sampler.result.duration_s == pytest.approx(stats.duration_s, rel=0.2, abs=0.05)
    return sampler.result


@pytest.mark.parametrize("quantity, field", [
    ("sm_clock", "sm_clock_mhz_mean"), ("mem_clock", "mem_clock_mhz_mean"), ("power", "power_w_mean"),
    ("temperature", "temperature_c_max"), ("max_sm_clock", "sm_clock_mhz_max"),
])
def test_nvml_telemetry_during_a_window(telemetry, quantity, field):
    """Each quantity the driver gives here shows up in the sampler's result; one it does not give skips
    this case only (a VM's NVML often lacks some)."""
    require(quantity, DEVICE)
    assert telemetry.n_polls >= 2
    value = getattr(telemetry, field)
    assert value is not None and value > 0, (field, telemetry)
    if quantity == "max_sm_clock" and telemetry.sm_clock_mhz_mean is not None:
        assert 0 < telemetry.sm_clock_ratio <= 1.05, (telemetry.sm_clock_mhz_mean, value)


def test_nvml_energy_counter_over_the_window(telemetry):
    require("energy", DEVICE)
    assert telemetry.energy_supported is True  # the driver answered above: the sampler must have a value
    assert telemetry.energy_j is not None and telemetry.energy_j > 0
    assert telemetry.power_w_mean == pytest.approx(telemetry.energy_j / telemetry.duration_s)


def test_nvml_clock_event_reasons_over_the_window(telemetry):
    require("clock_event_reasons", DEVICE)
    assert telemetry.reasons_supported is True
    assert isinstance(telemetry.throttled, bool)
    assert telemetry.reason_fractions is not None
    assert all(0 < fraction <= 1 for _, fraction in telemetry.reason_fractions)
    assert {reason for reason, _ in telemetry.reason_fractions} == set(telemetry.throttle_reasons)


def test_the_throttle_verdict_names_its_rule_and_reference_clock(telemetry):
    require("sm_clock", DEVICE)
    require("max_sm_clock", DEVICE)
    from bench.measure.nvml import THROTTLE_RULES

    assert telemetry.throttle_rule in THROTTLE_RULES, telemetry
    assert telemetry.sm_clock_mhz_reference is not None and telemetry.sm_clock_mhz_reference > 0


def test_fingerprint_describes_the_gpu():
    from bench.measure.env import fingerprint, preflight

    env = fingerprint()
    assert env["gpu_name"] and env["gpu_sm_count"] > 0 and env["gpu_memory_mib"] > 0
    assert env["hardware"].startswith("nvidia")
    assert next(c for c in preflight() if c.name == "gpu").verdict == "pass"
