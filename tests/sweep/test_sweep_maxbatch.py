"""The --max-batch search logic (doubling then bisection) and its refusal on the CPU."""

from __future__ import annotations

import csv

import pytest

from bench import cli
from bench.results.cell import Cell
from bench.sweep.tools.maxbatch import groups, search, write_csv
from bench.sweep.protocol import CellOutcome

CELL = Cell(model="repvgg_a0", form="train", mode="infer", batch_size=1, precision="fp32",
            memory_format="contiguous", runtime="eager", resolution=32)


def _limit_probe(limit: int, calls: list[int]):
    """Fits iff batch <= limit: the outcome a real probe gives when memory ends at `limit`."""

    def probe(cell: Cell) -> CellOutcome:
        calls.append(cell.batch_size)
        return CellOutcome(status="ok" if cell.batch_size <= limit else "oom", error="out of memory")

    return probe


@pytest.mark.parametrize("limit", [0, 1, 2, 3, 100, 127, 128, 129, 1000])
def test_search_finds_the_exact_limit(limit):
    calls: list[int] = []
    found = search(CELL, _limit_probe(limit, calls), cap=4096)
    assert found.max_batch_size == limit
    assert found.first_failing_batch_size == limit + 1
    assert found.probes == len(calls) <= 2 * max(1, limit).bit_length() + 2


def test_search_stops_at_the_cap_and_on_non_oom_failures():
    found = search(CELL, _limit_probe(10**9, []), cap=64)
    assert found.max_batch_size == 64 and found.first_failing_batch_size is None

    def broken(cell: Cell) -> CellOutcome:
        return CellOutcome(status="ok" if cell.batch_size < 4 else "error", error="boom")

    found = search(CELL, broken, cap=64)
    assert found.max_batch_size == 2 and "error: boom" in found.error


def test_groups_drop_runtime_and_batch_and_skipped_cells():
    cells = [Cell(**{**CELL.to_dict(), "batch_size": b, "runtime": r, "form": f, "mode": m})
             for b in (1, 8) for r in ("eager", "compile") for f in ("train", "deploy")
             for m in ("infer", "train_step")]
    reps = groups(cells, "cuda")
    expected = {("train", "infer"), ("deploy", "infer"), ("train", "train_step")}
    assert {(c.form, c.mode) for c in reps} == expected


def test_max_batch_on_cpu_is_a_clear_error(tmp_path, capsys):
    code = cli.main(["run", "--preset", "smoke", "--device", "cpu", "--max-batch", "--out", str(tmp_path)])
    assert code == 2
    assert "--max-batch needs CUDA" in capsys.readouterr().err


def test_the_cap_is_reported_as_no_limit_found_not_as_the_maximum(tmp_path):
    found = search(CELL, _limit_probe(10**9, []), cap=64)
    assert not found.limit_found and found.describe() == "no limit found up to 64"
    exact = search(CELL, _limit_probe(100, []), cap=4096)
    assert exact.limit_found and exact.describe() == "max batch 100"
    assert search(CELL, _limit_probe(0, []), cap=64).describe() == "batch 1 does not fit"
    write_csv([found, exact], tmp_path / "m.csv")
    rows = list(csv.DictReader(open(tmp_path / "m.csv")))
    assert [(r["limit_found"], r["cap"], r["max_batch_size"], r["largest_fitting_batch_size"]) for r in rows] == [
        ("False", "64", "", "64"), ("True", "4096", "100", "100")]


@pytest.mark.parametrize("limit", [99, 100, 10**9])
def test_a_cap_that_is_not_a_power_of_two_is_probed_itself(limit):
    calls: list[int] = []
    found = search(CELL, _limit_probe(limit, calls), cap=100)
    assert 100 in calls and max(calls) == 100
    assert found.max_batch_size == min(limit, 100)
    assert found.limit_found == (limit < 100)
    assert found.describe() == ("no limit found up to 100" if limit >= 100 else f"max batch {limit}")


INDEX_LIMIT = ("RuntimeError: Expected canUse32BitIndexMath(input) && canUse32BitIndexMath(output) to be true, "
               "but got false.")


def _size_limit_probe(limit: int, text: str):
    """Fits iff batch <= limit; above it the library refuses the size (what a 139 GiB card meets first)."""

    def probe(cell: Cell) -> CellOutcome:
        return CellOutcome(status="ok") if cell.batch_size <= limit else CellOutcome(status="error", error=text)

    return probe


@pytest.mark.parametrize("text", [INDEX_LIMIT, "cuDNN error: CUDNN_STATUS_NOT_SUPPORTED",
                                  "CUDA error: invalid configuration argument"])
def test_a_size_limit_after_a_fit_means_does_not_fit(text):
    found = search(CELL, _size_limit_probe(700, text), cap=4096)
    assert found.limit_found and found.max_batch_size == 700 and found.first_failing_batch_size == 701
    assert found.error is None and found.limit_reason == f"size limit: {text}"


def test_a_size_limit_at_batch_one_or_an_unknown_error_still_stops_the_search():
    found = search(CELL, _size_limit_probe(0, INDEX_LIMIT), cap=64)
    assert not found.limit_found and found.error.startswith("error: RuntimeError")
    found = search(CELL, _size_limit_probe(8, "ValueError: a bug"), cap=64)
    assert not found.limit_found and found.max_batch_size == 8 and "a bug" in found.error


def test_each_form_is_built_once_and_the_probes_load_that_build(tmp_path, monkeypatch):
    import torch
    from torch import nn

    from bench.models import build
    from bench.sweep.tools import maxbatch
    from bench.sweep.worker import probe
    from bench.sweep.protocol import CellSpec

    builds = []

    def build_form(name, form, seed=0):
        builds.append((name, form))
        torch.manual_seed(seed)
        return nn.Linear(3, 2)

    monkeypatch.setattr(build, "build_form", build_form)
    path = maxbatch.save_form(CELL, seed=7, folder=tmp_path)
    assert builds == [("repvgg_a0", "train")]
    monkeypatch.setattr(build, "build_form", lambda *a, **k: pytest.fail("a probe built the model again"))
    loaded = probe.load_form(CellSpec(cell=CELL, device="cpu", seed=7, module_path=str(path)))
    torch.manual_seed(7)
    assert torch.equal(loaded.weight, nn.Linear(3, 2).weight)
    spec = CellSpec(cell=CELL, device="cpu", module_path=str(path))
    assert CellSpec.from_json(spec.to_json()) == spec
