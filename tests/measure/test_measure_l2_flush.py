"""The L2-flush option of the CUDA regimes: its size rule and switch here, and on a GPU (`pytest -m gpu`)
that the flush happens before each call but outside its sample."""

from __future__ import annotations

import statistics
from types import SimpleNamespace

import pytest
import torch

from bench.measure.cuda_regimes import (DO_BENCH_FLUSH_BYTES, L2Flusher, PipelinedTimer, SynchronizedTimer,
                                        flush_l2_enabled, l2_flush_bytes)
from bench.measure.timing import TimingConfig


def test_flush_buffer_is_do_bench_size_or_twice_the_l2():
    assert l2_flush_bytes(0) == DO_BENCH_FLUSH_BYTES == 256 * 10**6
    assert l2_flush_bytes(60 * 2**20) == DO_BENCH_FLUSH_BYTES  # H200: 60 MiB L2
    assert l2_flush_bytes(200 * 2**20) == 400 * 2**20


def test_flush_is_off_unless_the_config_asks():
    assert flush_l2_enabled(TimingConfig()) is getattr(TimingConfig(), "flush_l2", False)
    assert flush_l2_enabled(SimpleNamespace()) is False
    assert flush_l2_enabled(SimpleNamespace(flush_l2=True)) is True


def _flush_ms(flusher: L2Flusher, device: torch.device) -> float:
    times = []
    for _ in range(20):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        flusher.flush()
        end.record()
        torch.cuda.synchronize(device)
        times.append(start.elapsed_time(end))
    return statistics.median(times)


@pytest.mark.gpu
@pytest.mark.parametrize("timer_class", [PipelinedTimer, SynchronizedTimer])
def test_flush_runs_before_each_call_and_outside_its_sample(timer_class):
    device = torch.device("cuda", 0)
    x = torch.zeros(1024, device=device)
    calls = []

    def tiny() -> None:
        calls.append(1)
        x.add_(1)

    with timer_class(tiny, device, SimpleNamespace(flush_l2=True)) as timer:
        assert timer.flusher is not None
        assert timer.flusher.buffer.numel() * 4 >= l2_flush_bytes(torch.cuda.get_device_properties(device)
                                                                  .L2_cache_size)
        timer.first_call_ms()
        samples = timer.run(200).samples_ms
        flush_ms = _flush_ms(timer.flusher, device)
    assert len(calls) == 201
    # Zeroing >= 256 MB takes tens of microseconds even at HBM3e bandwidth; a sample holding it would be
    # at least that long, while the tiny kernel alone is a few microseconds (plus host overhead, for
    # synchronized: compared with the same timer without a flush).
    with timer_class(tiny, device, SimpleNamespace()) as plain:
        assert plain.flusher is None
        plain_samples = plain.run(200).samples_ms
    assert statistics.median(samples) < statistics.median(plain_samples) + 0.5 * flush_ms, \
        (statistics.median(samples), statistics.median(plain_samples), flush_ms)


def test_host_bound_flag():
    from bench.measure.cuda_regimes import HOST_BOUND_RATIO, host_bound

    assert host_bound(0.95, 1.0) is True and host_bound(1.2, 1.0) is True
    assert host_bound(HOST_BOUND_RATIO - 0.01, 1.0) is False
    assert host_bound(None, 1.0) is None and host_bound(0.5, None) is None and host_bound(0.5, 0.0) is None
