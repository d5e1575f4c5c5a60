"""The timing driver on the CPU: stopping rules, warm-up, first call, the timed window, errors, and
agreement with torch.utils.benchmark.Timer (the one timing assertion allowed in unit tests)."""

from __future__ import annotations

import random
import time

import pytest
import torch
from torch.utils.benchmark import Timer

from bench.measure.regimes import CpuTimer
from bench.measure.stats import LatencyStats
from bench.measure.timing import TimingConfig, _converging_warm_up, measure_latency, regimes

FAST = dict(warmup_window_s=0.005, warmup_max_s=0.5, block_s=0.01)


def spin(ms: float) -> None:
    """Busy-wait: a call of a known minimum duration without sleeping (sleep overshoots)."""
    end = time.perf_counter() + ms / 1000.0
    while time.perf_counter() < end:
        pass


def alternating(short_ms: float, long_ms: float):
    state = {"i": 0}

    def call() -> None:
        state["i"] += 1
        spin(short_ms if state["i"] % 2 else long_ms)

    return call


def test_registry_lists_the_four_regimes():
    assert regimes() == ["cpu", "cudagraph", "pipelined", "synchronized"]
    with pytest.raises(ValueError, match=r"timing regime 'gpu' is unknown \(did you mean 'cpu'\?\); "
                                         r"known: cpu, cudagraph"):
        measure_latency(lambda: None, "cpu", "gpu", TimingConfig())


def random_duration(choices_ms: tuple[float, ...], seed: int = 0):
    rng = random.Random(seed)
    return lambda: spin(rng.choice(choices_ms))


def test_min_samples_and_min_time_are_respected_before_converging():
    config = TimingConfig(min_samples=25, min_time_s=0.2, target_rel_ci=1.0, timeout_s=5.0, **FAST)
    stats = measure_latency(lambda: spin(0.2), "cpu", "cpu", config)
    assert stats.stop_reason == "converged"
    assert stats.n >= 25
    assert stats.duration_s >= 0.2
    assert 0 < stats.timed_s <= stats.duration_s
    assert stats.num_threads == torch.get_num_threads()
    assert len(stats.samples_ms) == stats.n and stats.host_enqueue_ms_median is None
    assert stats.median_ci_low_ms <= stats.median_ms <= stats.median_ci_high_ms
    assert stats.median_ci_rel_half_width <= 1.0


def test_timeout_when_the_median_is_never_precise_enough():
    config = TimingConfig(min_samples=5, min_time_s=0.05, target_rel_ci=0.001, timeout_s=0.3, **FAST)
    stats = measure_latency(random_duration((0.1, 0.5)), "cpu", "cpu", config)
    assert stats.stop_reason == "timeout"
    assert stats.duration_s >= 0.3
    assert stats.median_ci_rel_half_width > 0.001


def test_a_timeout_never_ends_below_min_samples():
    """Calls of 20 ms against a 50 ms timeout: sampling goes on until min_samples are there."""
    config = TimingConfig(min_samples=12, min_time_s=0.0, target_rel_ci=0.0, timeout_s=0.05,
                          warmup_window_s=0.005, cpu_warmup_s=0.0, block_s=0.01)
    stats = measure_latency(lambda: spin(20.0), "cpu", "cpu", config)
    assert stats.stop_reason == "timeout"
    assert stats.n >= 12
    assert stats.duration_s >= 12 * 0.020


def test_max_samples_caps_sampling():
    config = TimingConfig(min_samples=5, max_samples=40, min_time_s=0.0, target_rel_ci=0.0, timeout_s=10.0,
                          **FAST)
    stats = measure_latency(alternating(0.05, 0.15), "cpu", "cpu", config)
    assert stats.stop_reason == "max_samples"
    assert stats.n == 40


def test_convergence_warm_up_continues_while_calls_keep_getting_faster():
    """The CUDA regimes' warm-up, driven here by the CPU timer (the driver is the same for all)."""
    state = {"i": 0}

    def settling() -> None:
        state["i"] += 1
        spin(max(0.3, 3.0 - 0.1 * state["i"]))

    config = TimingConfig(warmup_window_s=0.001, warmup_max_s=3.0)
    with CpuTimer(settling, torch.device("cpu"), config) as timer:
        first_call_ms = timer.first_call_ms()
        calls, sample_ms, converged = _converging_warm_up(timer, config, first_call_ms)
    assert first_call_ms >= 2.9
    assert calls >= 25 and calls == state["i"] - 1  # the first 27 calls each run 0.1 ms faster
    assert converged and sample_ms < 1.0


@pytest.mark.parametrize("cpu_warmup_s", [0.0, 0.05])
def test_cpu_regime_warms_up_for_a_fixed_time(cpu_warmup_s):
    state = {"calls": 0}

    def counted() -> None:
        state["calls"] += 1
        spin(0.5)

    config = TimingConfig(min_samples=5, min_time_s=0.01, target_rel_ci=1.0, timeout_s=1.0, warmup_max_s=5.0,
                          cpu_warmup_s=cpu_warmup_s, warmup_window_s=0.005, block_s=0.01)
    stats = measure_latency(counted, "cpu", "cpu", config)
    assert state["calls"] == 1 + stats.warmup_iters + stats.n
    assert (stats.warmup_iters == 0) == (cpu_warmup_s == 0.0)
    assert stats.warmup_converged


class RecordingWindow:
    """A timed window that records how many calls had been made when it was entered and left."""

    def __init__(self, state: dict) -> None:
        self.state = state
        self.entries: list[tuple[int, int]] = []

    def __call__(self) -> "RecordingWindow":
        return self

    def __enter__(self) -> "RecordingWindow":
        self.entries.append((self.state["calls"], -1))
        return self

    def __exit__(self, *exc: object) -> None:
        self.entries[-1] = (self.entries[-1][0], self.state["calls"])


def test_timed_window_wraps_the_timed_phase_only():
    state = {"calls": 0}

    def counted() -> None:
        state["calls"] += 1
        spin(0.2)

    recorder = RecordingWindow(state)
    config = TimingConfig(min_samples=10, min_time_s=0.05, target_rel_ci=1.0, timeout_s=1.0, **FAST)
    stats = measure_latency(counted, "cpu", "cpu", config, timed_window=recorder)
    assert len(recorder.entries) == 1
    entered_at, left_at = recorder.entries[0]
    assert entered_at == 1 + stats.warmup_iters  # the first call and warm-up ran before it
    assert left_at - entered_at == stats.n == state["calls"] - entered_at


def test_first_call_is_recorded_apart_from_the_samples():
    state = {"calls": 0}

    def cold_then_warm() -> None:
        state["calls"] += 1
        spin(40.0 if state["calls"] == 1 else 0.3)

    config = TimingConfig(min_samples=10, min_time_s=0.05, target_rel_ci=1.0, **FAST)
    stats = measure_latency(cold_then_warm, "cpu", "cpu", config)
    assert stats.first_call_ms >= 40.0
    assert stats.median_ms < 40.0
    assert state["calls"] == 1 + stats.warmup_iters + stats.n


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised where CUDA is absent")
@pytest.mark.parametrize("regime", ["pipelined", "synchronized", "cudagraph"])
def test_cuda_regimes_raise_a_clear_error_without_cuda(regime):
    calls = []
    with pytest.raises(RuntimeError, match=rf"timing regime '{regime}' needs a CUDA GPU.*use regime 'cpu'"):
        measure_latency(lambda: calls.append(1), torch.device("cuda"), regime, TimingConfig())
    assert not calls  # no number was produced, nothing was called


def test_cpu_regime_refuses_a_cuda_device():
    with pytest.raises(ValueError, match="regime 'cpu' times host work but the device is 'cuda:0'"):
        measure_latency(lambda: None, "cuda:0", "cpu", TimingConfig())


def _conv_workload():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(32, 64, 3, padding=1).eval()
    x = torch.randn(8, 32, 56, 56)  # about 10 ms on one core

    def call() -> torch.Tensor:
        with torch.inference_mode():
            return conv(x)

    return call


def _agreement_round(fn) -> tuple[float, float]:
    """Ours before and after the Timer, pooled (A-B-A cancels a slow drift of the machine's speed)."""
    config = TimingConfig(min_time_s=0.5, target_rel_ci=0.0, timeout_s=1.5)  # a fixed 1.5 s each
    before = measure_latency(fn, "cpu", "cpu", config)
    timer = Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    reference_ms = timer.blocked_autorange(min_run_time=1.0).median * 1000.0
    after = measure_latency(fn, "cpu", "cpu", config)
    pooled = LatencyStats.from_samples("cpu", before.samples_ms + after.samples_ms, stop_reason="pooled")
    assert before.num_threads == after.num_threads == torch.get_num_threads()
    return pooled.median_ms, reference_ms


def test_cpu_regime_agrees_with_torch_benchmark_timer():
    """Median within 5% of Timer.blocked_autorange on the same conv, same thread count (one retry)."""
    fn = _conv_workload()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the least sensitive to other load on a shared CI machine
    try:
        for _attempt in range(2):
            ours_ms, reference_ms = _agreement_round(fn)
            if abs(ours_ms / reference_ms - 1.0) <= 0.05:
                break
        assert abs(ours_ms / reference_ms - 1.0) <= 0.05, f"ours {ours_ms:.3f} ms vs Timer {reference_ms:.3f} ms"
    finally:
        torch.set_num_threads(threads)
