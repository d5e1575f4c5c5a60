"""TimingConfig validates every field's type and range, one clear message each."""

from __future__ import annotations

import dataclasses
import math

import pytest

from bench.measure.timing import TimingConfig

INT_FIELDS = ["min_samples", "max_samples", "warmup_min_window", "graph_calls", "graph_eager_warmup",
              "min_block_pairs"]
FLOAT_FIELDS = ["min_time_s", "target_rel_ci", "timeout_s", "warmup_rel_tol", "warmup_window_s",
                "warmup_max_s", "cpu_warmup_s", "block_s", "pair_block_s"]


def test_every_field_is_checked():
    names = {f.name for f in dataclasses.fields(TimingConfig)}
    assert names == set(INT_FIELDS) | set(FLOAT_FIELDS) | {"pair_order"}


def test_defaults_are_valid():
    config = TimingConfig()
    assert config.target_rel_ci == 0.01 and config.pair_order == "ABBA" and config.min_block_pairs == 6


@pytest.mark.parametrize("name", INT_FIELDS)
@pytest.mark.parametrize("bad", [True, 2.5, "3", None, -1])
def test_integer_fields_refuse_non_integers_and_negatives(name, bad):
    with pytest.raises(ValueError, match=rf"TimingConfig\.{name} must be an integer >= \d+; got "):
        TimingConfig(**{name: bad})


@pytest.mark.parametrize("name", FLOAT_FIELDS)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -0.5, True, "1.0", None])
def test_float_fields_refuse_nan_inf_bools_and_negatives(name, bad):
    if name == "timeout_s" and bad == -math.inf:
        bad = math.nan
    with pytest.raises(ValueError, match=rf"TimingConfig\.{name} must be a finite number >=? 0; got "):
        TimingConfig(**{name: bad})


@pytest.mark.parametrize("name", ["timeout_s", "warmup_rel_tol", "warmup_window_s", "warmup_max_s",
                                  "block_s", "pair_block_s"])
def test_positive_fields_refuse_zero(name):
    extra = {"min_time_s": 0.0} if name == "timeout_s" else {}
    with pytest.raises(ValueError, match=rf"TimingConfig\.{name} must be a finite number > 0; got 0"):
        TimingConfig(**{name: 0, **extra})


@pytest.mark.parametrize("name", ["min_time_s", "target_rel_ci", "cpu_warmup_s", "graph_eager_warmup"])
def test_zero_is_allowed_where_it_means_none(name):
    assert getattr(TimingConfig(**{name: 0}), name) == 0


def test_integers_are_accepted_for_seconds():
    assert TimingConfig(timeout_s=3, min_time_s=1).timeout_s == 3


def test_fewer_block_pairs_than_an_interval_needs_are_refused():
    with pytest.raises(ValueError, match=r"TimingConfig\.min_block_pairs must be an integer >= 6; got 5"):
        TimingConfig(min_block_pairs=5)


def test_pair_order_must_be_known():
    with pytest.raises(ValueError, match=r"TimingConfig\.pair_order must be one of ABBA, random; got 'ABAB'"):
        TimingConfig(pair_order="ABAB")


def test_cross_field_rules():
    with pytest.raises(ValueError, match=r"timeout_s \(1.0\) must be >= min_time_s \(5.0\)"):
        TimingConfig(min_time_s=5.0, timeout_s=1.0)
    with pytest.raises(ValueError, match=r"max_samples \(10\) must be >= min_samples \(20\)"):
        TimingConfig(min_samples=20, max_samples=10)
