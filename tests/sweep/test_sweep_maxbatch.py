"""The --max-batch search logic (doubling then bisection) and its refusal on the CPU."""

from __future__ import annotations

import csv

import pytest

from bench.sweep import command
from bench.sweep.cells import Cell
from bench.sweep.maxbatch import groups, search, write_csv
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
    code = command.main(["--preset", "smoke", "--device", "cpu", "--max-batch", "--out", str(tmp_path)])
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
