"""Paired measurement on a real NVIDIA GPU (`pytest -m gpu`): pipelined and CUDA-graph regimes."""

from __future__ import annotations

import pytest
import torch

from bench.measure.paired import measure_pair
from bench.measure.precision_switches import apply_precision_settings
from bench.measure.timing import TimingConfig

pytestmark = pytest.mark.gpu

DEVICE = torch.device("cuda", 0)
CONFIG = TimingConfig(min_samples=20, min_time_s=0.3, target_rel_ci=0.01, timeout_s=5.0, pair_block_s=0.02,
                      graph_calls=5)


def conv_forms(counts: dict[str, int]):
    """A conv of ~0.1-1 ms once ("fast") and three times ("slow"), same input; host calls counted."""
    apply_precision_settings("fp32")
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(DEVICE).eval()
    x = torch.randn(16, 64, 56, 56, device=DEVICE)

    def form(name: str, repeats: int):
        def call() -> torch.Tensor:
            counts[name] += 1
            with torch.inference_mode():
                y = conv(x)
                for _ in range(repeats - 1):
                    y = conv(x)
                return y
        return call

    return {"slow": form("slow", 3), "fast": form("fast", 1)}


class CountingWindow:
    def __init__(self, counts: dict[str, int]) -> None:
        self.counts, self.entered, self.left = counts, [], []

    def __call__(self) -> "CountingWindow":
        return self

    def __enter__(self) -> "CountingWindow":
        torch.cuda.synchronize(DEVICE)
        self.entered.append(dict(self.counts))
        return self

    def __exit__(self, *exc: object) -> None:
        self.left.append(dict(self.counts))


def _check(pair, regime: str) -> None:
    assert pair.forms == ("slow", "fast")
    assert pair.speedup_median > 1.5, pair.summary()  # three convs against one
    assert pair.speedup_ci_low <= pair.speedup_median <= pair.speedup_ci_high
    assert pair.n_pairs >= CONFIG.min_block_pairs
    assert pair.block_forms[:4] == ("slow", "fast", "fast", "slow")
    for stats in pair.stats.values():
        assert stats.regime == regime and stats.n >= CONFIG.min_samples
        assert stats.median_ci_low_ms <= stats.median_ms <= stats.median_ci_high_ms
        assert stats.host_enqueue_ms_median is None  # pipelined and cudagraph do not measure enqueue time


def test_pipelined_pair():
    counts = {"slow": 0, "fast": 0}
    window = CountingWindow(counts)
    pair = measure_pair(conv_forms(counts), DEVICE, "pipelined", CONFIG, timed_window=window)
    _check(pair, "pipelined")
    assert len(window.entered) == 1
    for name, stats in pair.stats.items():
        assert window.entered[0][name] == 1 + stats.warmup_iters
        assert window.left[0][name] - window.entered[0][name] == stats.n


def test_cudagraph_pair_captures_one_graph_per_form():
    counts = {"slow": 0, "fast": 0}
    window = CountingWindow(counts)
    pair = measure_pair(conv_forms(counts), DEVICE, "cudagraph", CONFIG, timed_window=window)
    _check(pair, "cudagraph")
    for name, stats in pair.stats.items():
        assert stats.calls_per_sample == CONFIG.graph_calls
        assert stats.warmup_iters >= CONFIG.graph_eager_warmup
        # host calls: first call, eager warm-up, graph_calls inside the capture; replays call nothing
        assert counts[name] == 1 + CONFIG.graph_eager_warmup + CONFIG.graph_calls
        assert window.left[0][name] == window.entered[0][name]


def test_pair_with_the_nvml_sampler_as_timed_window():
    from bench.measure.nvml import TelemetrySampler

    counts = {"slow": 0, "fast": 0}
    pair = measure_pair(conv_forms(counts), DEVICE, "pipelined", CONFIG,
                        timed_window=lambda: TelemetrySampler(DEVICE))
    assert pair.speedup_median > 1.5, pair.summary()


def test_each_forms_energy_is_read_around_its_own_blocks():
    """The slow form runs three convs per call, the fast one; each draws about the same power, so the slow
    form spends more energy per call. Skipped where NVML has no energy counter (some VMs)."""
    from bench.measure.nvml import energy_reader

    reader = energy_reader(DEVICE)
    if reader is None:
        pytest.skip("no NVML energy counter for cuda:0 here (NVML missing, or the driver/VM lacks it)")
    counts = {"slow": 0, "fast": 0}
    config = TimingConfig(min_samples=20, min_time_s=1.0, target_rel_ci=0.0, timeout_s=1.0, pair_block_s=0.1)
    pair = measure_pair(conv_forms(counts), DEVICE, "pipelined", config, block_energy=reader)
    energy = pair.energy_j
    assert set(energy) == {"slow", "fast"} and all(e is not None and e > 0 for e in energy.values()), energy
    per_call = {name: energy[name] / pair.stats[name].n for name in energy}
    assert per_call["slow"] > 1.5 * per_call["fast"], (per_call, pair.summary())
