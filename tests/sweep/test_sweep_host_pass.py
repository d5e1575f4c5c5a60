"""The host-enqueue side pass (`bench.sweep.worker.extra_timings`): its own small sample count whatever the
preset asks, and no pass where the pipelined median rules host-boundness out."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from bench.measure import timing
from bench.measure.cuda_regimes import HOST_BOUND_RATIO, HOST_US_PER_MODULE_MAX, host_bound_possible
from bench.measure.stats import LatencyStats
from bench.sweep.worker import collect, extra_timings

PAPER_TIMING = timing.TimingConfig(min_samples=20, min_time_s=1.0, target_rel_ci=0.01, timeout_s=10.0,
                                   warmup_max_s=2.0, block_s=0.05)
"""The `paper` preset's [timing] table."""


def test_the_pass_takes_its_own_few_samples_not_the_presets(monkeypatch):
    """The config the pass hands to the synchronized timer, seen on its way in (the timer itself is CUDA's
    and runs on a GPU; tests/sweep/test_sweep_gpu.py runs it there)."""
    seen = []

    def spy(fn, device, regime, config=None, timed_window=None):
        seen.append((regime, config))
        return LatencyStats.from_samples(regime, [1.0] * config.min_samples, stop_reason="timeout",
                                         host_enqueue_ms=[0.5] * config.min_samples)

    monkeypatch.setattr(timing, "measure_latency", spy)
    assert extra_timings.host_enqueue_ms(lambda: None, torch.device("cpu"), PAPER_TIMING) == 0.5
    [(regime, config)] = seen
    assert regime == "synchronized"
    assert config.min_samples == 5 and config.timeout_s <= 0.2 and config.warmup_max_s <= 0.05
    assert config.min_time_s == 0.0 and config.warmup_min_window == 1
    assert config.block_s == PAPER_TIMING.block_s  # what the pass does not set stays the preset's


def test_a_median_longer_than_the_host_could_issue_rules_host_bound_out():
    modules = 200
    longest_host_ms = modules * HOST_US_PER_MODULE_MAX / 1000.0  # 20 ms
    assert host_bound_possible(longest_host_ms / HOST_BOUND_RATIO, modules)
    assert not host_bound_possible(longest_host_ms / HOST_BOUND_RATIO * 1.01, modules)
    assert host_bound_possible(None, modules) and host_bound_possible(1.0, 0)  # unknown: keep the pass


def test_the_pass_is_skipped_for_a_large_call_and_the_row_says_not_host_bound():
    net = nn.Sequential(*(nn.Conv2d(8, 8, 3, padding=1) for _ in range(9)))  # 10 modules: 1 ms at most
    assert extra_timings.host_pass_needed(0.5, net)
    assert not extra_timings.host_pass_needed(50.0, net)
    stats = LatencyStats.from_samples("pipelined", [50.0] * 20, stop_reason="converged")
    record = collect.CellRecord(stats=stats, host_bound_ruled_out=True)
    cell = dataclasses.replace(_cell(), runtime="eager")
    fields = record.fields(cell)
    assert fields["host_bound"] is False and fields["host_enqueue_ms_median"] is None


def _cell():
    from bench.results.cell import Cell

    return Cell(model="repvgg_b3", form="train", mode="infer", batch_size=128, precision="fp32",
                memory_format="contiguous", runtime="eager", resolution=224)


@pytest.mark.parametrize("field", sorted(extra_timings.HOST_PASS))
def test_every_pass_setting_is_a_timing_field(field):
    assert field in {f.name for f in dataclasses.fields(timing.TimingConfig)}
