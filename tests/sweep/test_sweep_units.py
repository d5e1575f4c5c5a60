"""Units of work: which cells pair up, and the speedup row a pair gets (no processes, no timing)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from bench.measure.timing import TimingConfig
from bench.results.io import RunWriter
from bench.sweep.plan.cells import expand
from bench.sweep.plan.config import from_dict
from bench.sweep.protocol import PairOutcome, UnitOutcome, UnitSpec, group_units
from bench.sweep.driver.runner import make_row, plan, speedup_row


def _cells(**axes):
    return expand(from_dict({"axes": {"model": ["repvgg_a0", "resnet18"], **axes}}), "cpu")


def test_pairs_are_the_two_forms_of_one_inference_setting_and_a_worker_serves_a_model_in_a_row():
    cells = _cells(mode=["infer", "train_step"], batch_size=[1, 8], runtime=["eager", "compile"])
    units = group_units([c for c in cells if not c.skip_reason])
    pairs = [u for u in units if len(u) == 2]
    assert len(pairs) == 2 * 2 * 2, "model x batch x runtime, mode infer"
    for train, deploy in pairs:
        assert (train.form, deploy.form) == ("train", "deploy") and train.mode == "infer"
        assert {k: v for k, v in train.axes().items() if k != "form"} == \
            {k: v for k, v in deploy.axes().items() if k != "form"}
    lone = [u[0] for u in units if len(u) == 1]
    assert lone and all(c.mode == "train_step" for c in lone)
    keys = [(u[0].model, u[0].runtime) for u in units]
    runs = [k for i, k in enumerate(keys) if i == 0 or keys[i - 1] != k]
    assert len(runs) == len(set(keys)), "units of one (model, runtime) are contiguous"
    assert sorted(c.label() for u in units for c in u) == sorted(c.label() for c in cells if not c.skip_reason)


def test_a_worker_runs_a_compile_groups_units_in_a_row():
    """torch.compile units of one compile group (same model, precision, format, resolution; batch 1 apart)
    share one dynamic-batch graph, and dynamo is reset as another group starts: so a group's units run
    in a row, not interleaved by the batch loop (each revisit would recompile). Eager keeps the cells'
    order."""
    cells = [c for c in _cells(model=["repvgg_a0"], batch_size=[1, 8, 32], runtime=["eager", "compile"],
                               memory_format=["contiguous", "channels_last"]) if not c.skip_reason]
    order = [(u[0].runtime, u[0].batch_size, u[0].memory_format) for u in group_units(cells)]
    expected = [(b, f) for b in (1, 8, 32) for f in ("contiguous", "channels_last")]
    assert [(b, f) for r, b, f in order if r == "eager"] == expected
    assert [(b, f) for r, b, f in order if r == "compile"] == [
        (1, "contiguous"), (1, "channels_last"), (8, "contiguous"), (32, "contiguous"),
        (8, "channels_last"), (32, "channels_last")]


def test_a_lone_form_is_its_own_unit():
    units = group_units(_cells(form=["deploy"]))
    assert [len(u) for u in units] == [1, 1]


def test_unit_spec_round_trips_through_json():
    cells = _cells()
    spec = UnitSpec(cells=tuple(cells[:2]), device="cpu", seed=3, timing=TimingConfig(timeout_s=1.0),
                    faults=(("oom",), ()), outcome_path="/tmp/x.json")
    back = UnitSpec.from_json(spec.to_json())
    assert back == spec and back.is_pair and back.worker_key() == ("repvgg_a0", "eager")
    assert "train+deploy" in back.label()


def _pair_rows(tmp_path: Path, statuses: tuple[str, str]):
    p = plan(from_dict({"axes": {"model": ["repvgg_a0"]}, "run": {"device": "cpu"}}), out=tmp_path)
    outcome = UnitOutcome.failed(2, "ok", "")
    for cell_outcome, status in zip(outcome.cells, statuses):
        cell_outcome.status, cell_outcome.error = status, None if status == "ok" else f"{status}!"
        cell_outcome.fields = {"latency_ms_median": 2.0 if cell_outcome is outcome.cells[0] else 1.0}
    outcome.pair = PairOutcome(speedup_median=2.0, speedup_ci_low=1.9, speedup_ci_high=2.1, n_blocks=20,
                               stop_reason="converged", timed_s=1.5)
    rows = [make_row(p, c, o, 0.0, 1.0) for c, o in zip(p.cells, outcome.cells)]
    return p, rows, speedup_row(p, rows, outcome, 0.0, 2.0)


def test_a_speedup_only_from_an_ok_pair(tmp_path):
    _, _, ok = _pair_rows(tmp_path, ("ok", "ok"))
    assert ok.status == "ok" and (ok.speedup_median, ok.speedup_ci_low, ok.speedup_ci_high) == (2.0, 1.9, 2.1)
    assert (ok.latency_ms_median_train, ok.latency_ms_median_deploy, ok.n_blocks) == (2.0, 1.0, 20)
    for statuses, expected in ((("ok", "mismatch"), "mismatch"), (("oom", "oom"), "oom"),
                               (("ok", "error"), "error")):
        _, _, bad = _pair_rows(tmp_path, statuses)
        assert bad.status == expected and bad.speedup_median is None and bad.speedup_ci_low is None
        assert bad.error == f"{expected}!" and (bad.n_blocks, bad.stop_reason, bad.timed_s) == (20, "converged", 1.5)


def test_a_unit_outcome_and_its_pair_round_trip_through_json():
    outcome = UnitOutcome.failed(2, "ok", "")
    outcome.pair = PairOutcome(speedup_median=2.0, speedup_ci_low=None, speedup_ci_high=None, n_blocks=4,
                               stop_reason="max_samples", timed_s=0.5)
    assert UnitOutcome.from_json(outcome.to_json()) == outcome
    assert UnitOutcome.from_json(UnitOutcome.failed(1, "oom", "x").to_json()).pair is None


def test_a_row_refuses_a_measured_field_that_is_not_a_column(tmp_path):
    """A misspelt column must fail where the row is made, not vanish from the tables."""
    p = plan(from_dict({"axes": {"model": ["repvgg_a0"]}, "run": {"device": "cpu"}}), out=tmp_path)
    outcome = UnitOutcome.failed(1, "ok", "").cells[0]
    outcome.error, outcome.fields = None, {"latency_ms_median": 1.0, "latency_ms_medain": 1.0}
    with pytest.raises(ValueError, match=r"'latency_ms_medain' is not a column of Result"):
        make_row(p, p.cells[0], outcome, 0.0, 1.0)


def test_speedups_table_follows_its_cells_and_tables_wait_for_flush(tmp_path):
    p, rows, pair = _pair_rows(tmp_path, ("ok", "ok"))
    writer = RunWriter(p.run_dir)
    writer.write_unit([(r, [1.0, 2.0]) for r in rows], pair)
    assert len(writer) == 2
    writer.flush()
    table = pd.read_parquet(p.run_dir / "speedups.parquet")
    assert list(table["speedup_median"]) == [2.0] and (p.run_dir / "speedups.csv").is_file()
    assert len(pd.read_parquet(p.run_dir / "summary.parquet")) == 2
    reopened = RunWriter(p.run_dir)
    assert len(pd.read_parquet(reopened.run_dir / "speedups.parquet")) == 1


def test_a_prebuilt_cache_holds_the_weights_the_unit_would_have_built():
    """A spare worker builds the next model ahead (`UnitSpec.prebuild`): the same forms, bit for bit."""
    import torch

    from bench.sweep.worker.unit import ModelCache, _Unit, prebuild

    cells = tuple(c for c in _cells() if c.model == "repvgg_a0")
    spec = UnitSpec(cells=cells, device="cpu", seed=5)
    ahead = ModelCache(seed=5)
    torch.manual_seed(123)  # whatever the global RNG holds before, prebuild seeds as the unit does
    prebuild(spec, ahead)
    assert {("repvgg_a0", "train"), ("repvgg_a0", "deploy")} <= set(ahead.forms)
    assert "repvgg_a0" in ahead.folds and ahead.macs
    in_unit = ModelCache(seed=5)
    unit = _Unit(spec, in_unit)
    unit.setup()
    unit.prepare()
    for form in ("train", "deploy"):
        a = ahead.forms[("repvgg_a0", form)].state_dict()
        b = in_unit.forms[("repvgg_a0", form)].state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), form
    assert UnitSpec.from_json(dataclasses.replace(spec, prebuild=True).to_json()).prebuild
