"""Cell expansion (the cartesian product, train/deploy adjacent) and NVBench-style skip reasons."""

from __future__ import annotations

import math

from bench.results.schema import AXES
from bench.results.cell import Cell
from bench.sweep.plan.cells import expand, skip_reason
from bench.sweep.plan.config import from_dict, load_preset
from bench.sweep.protocol import CellOutcome, CellSpec


def _cell(**kw) -> Cell:
    base = dict(model="repvgg_a0", form="train", mode="infer", batch_size=1, precision="fp32",
                memory_format="contiguous", runtime="eager", resolution=32)
    return Cell(**{**base, **kw})


def test_expansion_is_the_full_product_with_pairs_adjacent():
    config = load_preset("full")
    cells = expand(config, "cuda")
    assert len(cells) == math.prod(len(config.values(a)) for a in AXES)
    assert len({c.key() for c in cells}) == len(cells)
    for first, second in zip(cells[::2], cells[1::2]):
        assert (first.form, second.form) == ("train", "deploy")
        assert first.key()[:1] == second.key()[:1] and first.key()[2:] == second.key()[2:]


def test_key_follows_schema_axes():
    cell = _cell(batch_size=8, resolution=64)
    assert cell.key() == tuple(getattr(cell, a) for a in AXES)
    assert cell.key()[AXES.index("batch_size")] == 8


def test_skip_reasons_on_cpu_and_cuda():
    assert "not timed on CPU" in skip_reason(_cell(precision="fp16"), "cpu")
    assert "not timed on CPU" in skip_reason(_cell(precision="tf32"), "cpu")
    assert "not timed on CPU" in skip_reason(_cell(runtime="cudagraph"), "cpu")
    assert skip_reason(_cell(precision="fp16"), "cuda") is None
    assert skip_reason(_cell(runtime="cudagraph"), "cuda") is None
    assert "training form" in skip_reason(_cell(form="deploy", mode="train_step"), "cuda")
    assert skip_reason(_cell(mode="train_step"), "cuda") is None
    assert skip_reason(_cell(runtime="compile"), "cpu") is None
    assert skip_reason(_cell(), "cpu") is None


def test_full_preset_on_cpu_runs_only_fp32_without_graphs():
    cells = expand(load_preset("full"), "cpu")
    run = [c for c in cells if not c.skip_reason]
    assert run and all(c.precision == "fp32" and c.runtime != "cudagraph" for c in run)
    assert not any(c.form == "deploy" and c.mode == "train_step" for c in run)


def test_smoke_preset_has_no_skips_on_cpu():
    assert not any(c.skip_reason for c in expand(load_preset("smoke"), "cpu"))


def test_faults_match_cells_by_axes():
    config = from_dict({"name": "t", "axes": {"model": ["repvgg_a0"], "batch_size": [1, 2]},
                        "fault": [{"kind": "oom", "match": {"batch_size": 2, "form": "train"}}]})
    matched = [c for c in expand(config, "cpu") if config.faults[0].applies(c.axes())]
    assert [(c.batch_size, c.form) for c in matched] == [(2, "train")]


def test_spec_and_outcome_roundtrip_through_json():
    spec = CellSpec(cell=_cell(), device="cpu", seed=3, faults=("oom",))
    assert CellSpec.from_json(spec.to_json()) == spec
    outcome = CellOutcome(status="ok", fields={"latency_ms_median": 1.5}, samples_ms=[1.0, 2.0])
    assert CellOutcome.from_json(outcome.to_json()) == outcome
