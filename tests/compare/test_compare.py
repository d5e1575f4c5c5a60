"""bench compare: verdicts on generated samples (A/A, injected slowdown), hardware refusal, missing cells,
correctness gates, memory, speedups, outputs and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.compare.comparison import HardwareMismatchError, compare, load_run
from bench.results.io import RunWriter
from bench.compare.verdicts import Settings
from tests.results.results_rows import cells, row, write_run

KEYS = cells(50)
SLOW = KEYS[23]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A baseline and re-runs of the same distribution: A/A, one cell 20% slower, another hardware."""
    root = tmp_path_factory.mktemp("results")
    rng = np.random.default_rng(2024)
    return {
        "base": write_run(root / "cpu" / "base", KEYS, rng, run_id="base", hardware="cpu"),
        "aa": write_run(root / "cpu" / "aa", KEYS, rng, run_id="aa", hardware="cpu"),
        "slow": write_run(root / "cpu" / "slow", KEYS, rng, run_id="slow", hardware="cpu", scale={SLOW: 1.2}),
        "other": write_run(root / "gpu" / "other", KEYS, rng, run_id="other", hardware="gpu", scale={SLOW: 0.5}),
    }


def test_aa_of_the_same_distribution_reports_no_slower(runs: dict[str, Path]) -> None:
    result = compare(load_run(runs["base"]), load_run(runs["aa"]))
    counts = result.counts()
    assert counts.get("SLOWER", 0) == 0 and counts.get("FASTER", 0) == 0
    assert counts["SAME"] > len(KEYS) / 2
    assert result.exit_code() == 0
    assert not result.memory.size and not len(result.gate_regressions())


def test_injected_slowdown_is_the_only_slower_cell_and_exits_1(runs: dict[str, Path], capsys) -> None:
    result = compare(load_run(runs["base"]), load_run(runs["slow"]))
    slower = result.cells[result.cells["verdict"].eq("SLOWER")]
    assert [(r.model, r.form, r.batch_size) for r in slower.itertuples()] == [SLOW]
    assert 1.1 < slower["ratio"].item() < 1.3 and slower["ci_lo"].item() > 1.05
    assert main(["compare", str(runs["base"]), str(runs["slow"])]) == 1
    out = capsys.readouterr().out
    assert "FAIL: 1 cell(s) SLOWER" in out and SLOW[0] in out


def test_different_hardware_is_refused_with_a_clear_message(runs: dict[str, Path], capsys) -> None:
    with pytest.raises(HardwareMismatchError, match=r"'cpu'.*'gpu'.*--across-hardware"):
        compare(load_run(runs["base"]), load_run(runs["other"]))
    assert main(["compare", str(runs["base"]), str(runs["other"])]) == 2
    assert "not comparable cell by cell" in capsys.readouterr().err
    assert main(["compare", str(runs["base"]), str(runs["other"]), "--across-hardware"]) == 0
    out = capsys.readouterr().out
    assert "Throughput (samples/s) per hardware: gpu / cpu" in out and "SLOWER" not in out.split("PASS")[1]


def test_across_hardware_table_has_throughput_ratios(runs: dict[str, Path]) -> None:
    result = compare(load_run(runs["base"]), load_run(runs["other"]), across_hardware=True)
    table = result.hardware.set_index(["model", "form", "batch_size"])
    assert table.loc[SLOW, "throughput_ratio"] == pytest.approx(2.0, rel=0.1)
    assert len(table) == len(KEYS) and result.exit_code() == 0


def _copy_with(tmp_path: Path, name: str, source: Path, change) -> Path:
    """A copy of a run where `change(result, samples)` returns the row and samples to write (None = drop)."""
    from bench.results import load, load_samples
    from bench.results.schema import AXES, Result

    summary, samples = load(source), load_samples(source)
    items = []
    for record in summary.to_dict("records"):
        fields = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in record.items()}
        result = Result(**fields)
        mask = np.logical_and.reduce([samples[a] == getattr(result, a) for a in AXES])
        changed = change(result, samples[mask].sort_values("sample_index")["latency_ms"].to_numpy())
        if changed is not None:
            items.append(changed)
    RunWriter(tmp_path / name).extend(items)
    return tmp_path / name


def test_missing_and_new_cells_are_reported_not_crashed_on(runs: dict[str, Path], tmp_path: Path) -> None:
    gone, broken = KEYS[5], KEYS[8]

    def change(result, samples):
        key = (result.model, result.form, result.batch_size)
        if key == gone:
            return None
        if key == broken:
            return row(*key, run_id="aa", hardware="cpu", status="oom"), []
        return result, samples

    new = _copy_with(tmp_path, "new", runs["aa"], change)
    extra = np.random.default_rng(1).lognormal(0, 0.05, 30)
    writer = RunWriter(new)
    writer.append(row("brand_new", "deploy", 8, run_id="aa", hardware="cpu", samples=extra), extra)
    result = compare(load_run(runs["base"]), load_run(new))
    verdict = result.cells.set_index(["model", "form", "batch_size"])
    assert verdict.loc[gone, "verdict"] == "MISSING" and verdict.loc[gone, "note"] == "not in the new run"
    assert verdict.loc[broken, "verdict"] == "MISSING" and "new status oom" in verdict.loc[broken, "note"]
    assert verdict.loc[("brand_new", "deploy", 8), "verdict"] == "NEW"
    assert result.exit_code() == 0
    assert compare(load_run(runs["base"]), load_run(new), fail_on=("missing",)).exit_code() == 1


def test_gate_regression_fails_and_memory_changes_are_listed(runs: dict[str, Path], tmp_path: Path) -> None:
    bad, grew, wobble = KEYS[11], KEYS[12], KEYS[13]

    def change(result, samples):
        key = (result.model, result.form, result.batch_size)
        extra = {"peak_allocated_mib": 100.0 + {grew: 4.0, wobble: 0.5}.get(key, 0.0)}
        if key == bad:
            extra.update(status="mismatch", max_abs_err=0.2, tolerance=1e-4)
        return row(*key, run_id="aa", hardware="cpu", samples=samples, **extra), samples

    base = _copy_with(tmp_path, "base", runs["base"],
                      lambda r, s: (row(r.model, r.form, r.batch_size, run_id="base", hardware="cpu", samples=s,
                                        peak_allocated_mib=100.0), s))
    result = compare(load_run(base), load_run(_copy_with(tmp_path, "new", runs["aa"], change)))
    regressions = result.gate_regressions()
    assert [(r.model, r.form, r.batch_size) for r in regressions.itertuples()] == [bad]
    assert [(r.model, r.form, r.batch_size, r.delta_mib) for r in result.memory.itertuples()] == [(*grew, 4.0)]
    assert result.exit_code() == 1 and "correctness gate regression" in result.failures()[0]


def test_a_smaller_speedup_is_reported_and_fails_only_when_asked(runs: dict[str, Path], tmp_path: Path) -> None:
    model = KEYS[0][0]

    def change(result, samples):
        faster = result.model == model and result.form == "train"
        return (row(result.model, result.form, result.batch_size, run_id="aa", hardware="cpu",
                    samples=samples * (0.7 if faster else 1.0)), samples * (0.7 if faster else 1.0))

    new = _copy_with(tmp_path, "new", runs["aa"], change)
    result = compare(load_run(runs["base"]), load_run(new))
    smaller = result.speedups[result.speedups["verdict"].eq("SMALLER")]
    assert set(smaller["model"]) == {model} and len(smaller) == 5
    assert set(result.cells.loc[result.cells["verdict"].eq("FASTER"), "model"]) == {model}
    assert result.exit_code() == 0
    assert compare(load_run(runs["base"]), load_run(new), fail_on=("speedup",)).exit_code() == 1


def test_markdown_and_json_outputs(runs: dict[str, Path], capsys) -> None:
    assert main(["compare", str(runs["base"]), str(runs["slow"]), "--markdown"]) == 1
    markdown = capsys.readouterr().out
    assert markdown.startswith("## Benchmark comparison") and "### Slower cells (regressions) (1)" in markdown
    assert f"| {SLOW[0]} | {SLOW[1]} | {SLOW[2]} |" in markdown and "<details>" in markdown
    assert main(["compare", str(runs["base"]), str(runs["slow"]), "--json", "--threshold", "0.5"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["exit_code"] == 0 and doc["settings"]["threshold"] == 0.5
    assert len(doc["cells"]) == 50 and doc["counts"].get("SLOWER", 0) == 0


def test_bad_settings_and_unknown_fail_on_are_errors(runs: dict[str, Path], capsys) -> None:
    with pytest.raises(ValueError, match="threshold"):
        Settings(threshold=-0.1)
    assert main(["compare", str(runs["base"]), str(runs["aa"]), "--fail-on", "vibes"]) == 2
    assert "fail_on 'vibes' is unknown; known: speedup, memory, missing" in capsys.readouterr().err


def test_a_folder_with_two_runs_of_the_same_cells_is_refused(runs: dict[str, Path], capsys) -> None:
    assert main(["compare", str(runs["base"]), str(runs["base"].parent)]) == 2
    assert "rows measure the same cells (runs aa, base, slow)" in capsys.readouterr().err


def test_an_id_of_the_older_form_is_explained(tmp_path: Path) -> None:
    from tests.results.results_rows import cells, write_run

    rng = np.random.default_rng(5)
    old = write_run(tmp_path / "amd-epyc" / "r1", cells(4), rng, run_id="r1", hardware="amd-epyc")
    new = write_run(tmp_path / "amd-epyc-f25m1-2c" / "r2", cells(4), rng, run_id="r2",
                    hardware="amd-epyc-f25m1-2c")
    with pytest.raises(HardwareMismatchError, match=r"'amd-epyc' is a hardware id of the older form"):
        compare(load_run(old), load_run(new))


@pytest.mark.parametrize("damage, message", [
    ({"latency_ms_median": None, "n_samples": None, "latency_ms_median_ci_low": None,
      "latency_ms_median_ci_high": None}, "latency_ms_median is nan"),
    ({"speedup_median": float("inf"), "speedup_ci_low": -1.0, "speedup_ci_high": float("inf")},
     "speedup_median = inf, speedup_ci_low = -1.0, speedup_ci_high = inf"),
    ({"speedup_median": 1.5, "speedup_ci_low": 1.6, "speedup_ci_high": 1.4}, "is not an interval"),
])
@pytest.mark.parametrize("speedups_only", [False, True])
def test_ok_rows_without_finite_timings_are_refused_not_passed(runs: dict[str, Path], tmp_path: Path, capsys,
                                                               damage, message, speedups_only) -> None:
    """A run whose ok rows hold nothing measured, or an infinite speedup with a negative interval, cannot
    pass a comparison: exit 2 naming the cells and what is wrong."""
    import dataclasses

    no_samples = "latency_ms_median" in damage
    new = _copy_with(tmp_path, "damaged", runs["aa"],
                     lambda r, s: (dataclasses.replace(r, **damage), [] if no_samples else s))
    argv = ["compare", str(runs["base"]), str(new), *(["--speedups-only"] if speedups_only else [])]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{new}: {len(KEYS)} ok row(s) carry no usable timing" in err and message in err, err
