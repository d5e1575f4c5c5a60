"""Paired measurement on the CPU with real callables of known order, its stop rule, and its errors."""

from __future__ import annotations

import math

import pytest
import torch

from bench.measure.paired import PairMeasurement, measure_pair, pair_schedule, pair_stop_reason
from bench.measure.timing import TimingConfig

QUICK = dict(min_samples=10, min_time_s=0.1, target_rel_ci=0.05, timeout_s=1.0, pair_block_s=0.01,
             cpu_warmup_s=0.02, warmup_window_s=0.005)


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def conv_forms(counts: dict[str, int]):
    """A small conv once ("fast") and the same conv three times ("slow"); calls are counted."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(8, 8, 3, padding=1).eval()
    x = torch.randn(1, 8, 16, 16)

    def form(name: str, repeats: int):
        def call() -> None:
            counts[name] += 1
            with torch.inference_mode():
                for _ in range(repeats):
                    conv(x)
        return call

    return {"slow": form("slow", 3), "fast": form("fast", 1)}


class RecordingWindow:
    """Records the call counts of both forms when the timed window is entered and left."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts
        self.entered: list[dict[str, int]] = []
        self.left: list[dict[str, int]] = []

    def __call__(self) -> "RecordingWindow":
        return self

    def __enter__(self) -> "RecordingWindow":
        self.entered.append(dict(self.counts))
        return self

    def __exit__(self, *exc: object) -> None:
        self.left.append(dict(self.counts))


def test_slow_form_first_gives_a_speedup_above_one_inside_its_interval(one_thread):
    counts = {"slow": 0, "fast": 0}
    recorder = RecordingWindow(counts)
    config = TimingConfig(**{**QUICK, "max_samples": 1_000_000})  # a sub-ms conv: let time end the pair
    pair = measure_pair(conv_forms(counts), "cpu", "cpu", config, timed_window=recorder)
    assert isinstance(pair, PairMeasurement) and pair.forms == ("slow", "fast")
    assert pair.speedup_median > 1.0, pair.summary()
    assert pair.speedup_ci_low <= pair.speedup_median <= pair.speedup_ci_high
    # the pairs' median ratio; close to the ratio of the forms' medians on a steady machine
    assert pair.speedup_median == pytest.approx(pair.stats["slow"].median_ms / pair.stats["fast"].median_ms,
                                                rel=0.1)
    assert pair.stop_reason in ("converged", "timeout") and pair.n_pairs >= 6
    assert pair.n_blocks == len(pair.block_forms) == 2 * pair.n_pairs
    assert 0 < pair.timed_s <= pair.duration_s
    for name, stats in pair.stats.items():
        assert stats.n >= 10 and stats.stop_reason == pair.stop_reason and stats.regime == "cpu"
        assert stats.median_ci_low_ms <= stats.median_ms <= stats.median_ci_high_ms
        assert stats.first_call_ms is not None and stats.num_threads == 1
        assert stats.duration_s == pair.duration_s and 0 < stats.timed_s < pair.timed_s
    assert pair.timed_s == pytest.approx(pair.stats["slow"].timed_s + pair.stats["fast"].timed_s)


def test_blocks_run_in_abba_order(one_thread):
    counts = {"slow": 0, "fast": 0}
    pair = measure_pair(conv_forms(counts), "cpu", "cpu", TimingConfig(**QUICK))
    assert pair.order == "ABBA"
    expected = ("slow", "fast", "fast", "slow") * pair.n_blocks
    assert pair.block_forms == expected[:pair.n_blocks]


def test_timed_window_is_entered_once_around_the_timed_blocks_only(one_thread):
    counts = {"slow": 0, "fast": 0}
    recorder = RecordingWindow(counts)
    pair = measure_pair(conv_forms(counts), "cpu", "cpu", TimingConfig(**QUICK), timed_window=recorder)
    assert len(recorder.entered) == len(recorder.left) == 1
    for name, stats in pair.stats.items():
        assert recorder.entered[0][name] == 1 + stats.warmup_iters  # first call and warm-up came before
        assert recorder.left[0][name] - recorder.entered[0][name] == stats.n
        assert counts[name] == recorder.left[0][name]  # nothing ran after the window closed


def test_the_energy_counter_is_read_around_each_forms_own_blocks(one_thread):
    """A counter that advances 3 J per slow call and 2 J per fast call (not in proportion to their times):
    each form's energy is exactly what its own timed calls spent, so the per-call ratio is 1.5, not the
    latency ratio; first calls and warm-up stay outside."""
    counts = {"slow": 0, "fast": 0}
    pair = measure_pair(conv_forms(counts), "cpu", "cpu", TimingConfig(**QUICK),
                        block_energy=lambda: 3.0 * counts["slow"] + 2.0 * counts["fast"])
    assert pair.energy_j == {"slow": 3.0 * pair.stats["slow"].n, "fast": 2.0 * pair.stats["fast"].n}
    per_call = {name: pair.energy_j[name] / pair.stats[name].n for name in pair.energy_j}
    assert per_call["slow"] / per_call["fast"] == pytest.approx(1.5)
    assert measure_pair(conv_forms(counts), "cpu", "cpu", TimingConfig(**QUICK)).energy_j == {}


def test_a_counter_that_fails_on_a_block_leaves_that_forms_energy_empty(one_thread):
    counts = {"slow": 0, "fast": 0}
    reads = []

    def flaky() -> float | None:
        reads.append(1)
        return None if len(reads) == 2 else float(counts["slow"] + counts["fast"])  # the first block's end

    pair = measure_pair(conv_forms(counts), "cpu", "cpu", TimingConfig(**QUICK), block_energy=flaky)
    assert pair.energy_j["slow"] is None and pair.energy_j["fast"] == pair.stats["fast"].n


def test_random_order_follows_the_seed(one_thread):
    config = TimingConfig(**{**QUICK, "pair_order": "random", "target_rel_ci": 0.0, "timeout_s": 0.2})
    runs = [measure_pair(conv_forms({"slow": 0, "fast": 0}), "cpu", "cpu", config, seed=seed)
            for seed in (1, 1, 2)]
    assert all(run.order == "random" for run in runs)
    n = min(run.n_blocks for run in runs)
    assert runs[0].block_forms[:n] == runs[1].block_forms[:n]
    assert runs[0].block_forms[:n] != runs[2].block_forms[:n]
    for run in runs:  # each pair holds one block of each form
        assert all({run.block_forms[i], run.block_forms[i + 1]} == {"slow", "fast"}
                   for i in range(0, run.n_blocks, 2))


def test_pair_schedule():
    assert [pair_schedule(i, "ABBA") for i in range(4)] == [(0, 1), (1, 0), (0, 1), (1, 0)]
    with pytest.raises(ValueError, match="pair order 'ABC' is unknown; known: ABBA, random"):
        pair_schedule(0, "ABC")


def test_pair_stop_rule():
    config = TimingConfig(min_samples=10, min_time_s=0.5, target_rel_ci=0.01, timeout_s=2.0,
                          max_samples=100, min_block_pairs=6)
    steady, ratios = [1.0] * 30, [math.log(1.0)] * 6
    assert pair_stop_reason(steady, steady, ratios, 1.0, config) == "converged"
    assert pair_stop_reason(steady, steady, ratios, 0.4, config) is None  # before min_time_s
    assert pair_stop_reason(steady, steady, ratios[:5], 9.0, config) is None  # too few pairs, even late
    assert pair_stop_reason(steady, steady[:9], ratios, 9.0, config) is None  # too few samples, even late
    noisy_ratios = [-0.2, 0.2] * 3  # the speedup interval is +-20%: not precise
    assert pair_stop_reason(steady, steady, noisy_ratios, 1.0, config) is None
    assert pair_stop_reason(steady, steady, noisy_ratios, 2.0, config) == "timeout"
    drifting = [1.0 + i / 10 for i in range(30)]  # one form's median is not pinned down
    assert pair_stop_reason(drifting, steady, ratios, 1.0, config) is None
    assert pair_stop_reason([1.0] * 100, steady, ratios[:1], 0.0, config) == "max_samples"


def test_bad_forms_and_regimes_are_refused_before_anything_runs():
    calls = []
    fn = lambda: calls.append(1)  # noqa: E731
    with pytest.raises(ValueError, match="exactly two forms .*got 3: a, b, c"):
        measure_pair({"a": fn, "b": fn, "c": fn}, "cpu", "cpu")
    with pytest.raises(ValueError, match="form 'b' must be a str naming a zero-argument callable; got int"):
        measure_pair({"a": fn, "b": 3}, "cpu", "cpu")
    with pytest.raises(ValueError, match="timing regime 'gpu' is unknown"):
        measure_pair({"a": fn, "b": fn}, "cpu", "gpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="timing regime 'cudagraph' needs a CUDA GPU"):
            measure_pair({"a": fn, "b": fn}, "cuda", "cudagraph")
    assert not calls
