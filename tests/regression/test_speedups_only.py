"""`bench compare --speedups-only`: across hardware, fails on a collapsed (SMALLER), LOST or MISSING speedup
and on a gate regression, passes an A/A comparison; plus the committed CPU baseline that `.ci/run` uses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.compare.comparison import load_run
from bench.compare.speedups_only import LOST, compare_speedups_only
from bench.results.io import RunWriter
from bench.compare.verdicts import Settings
from tests.results.results_rows import cells, lognormal, row, write_run

KEYS = cells(40)
MODELS = sorted({m for m, _, _ in KEYS})
AS_BASE = {k: 4.0 for k in KEYS if k[0] == MODELS[0] and k[1] == "train"}
CI = Settings(threshold=0.67)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every pair 1.5x; pairs of MODELS[0] 6x (train 4x slower), so a fall to 2x is SMALLER, not LOST."""
    root = tmp_path_factory.mktemp("base")
    return write_run(root / "laptop" / "base", KEYS, np.random.default_rng(7), run_id="base", hardware="laptop",
                     scale=AS_BASE)


def _new(tmp_path: Path, scale: dict | None = None, drop: tuple = (), status: dict | None = None) -> Path:
    """A run on other hardware (every cell 3x slower, speedups as in `base`), with chosen cells scaled (on
    top of AS_BASE, which `scale` may override), dropped or given a status."""
    rng = np.random.default_rng(11)
    scale = {**AS_BASE, **(scale or {})}
    items = []
    for key in KEYS:
        if key in drop:
            continue
        median = 3 * 0.5 * key[2] * (1.5 if key[1] == "train" else 1.0) * scale.get(key, 1.0)
        samples = lognormal(rng, median)
        extra = (status or {}).get(key, {})
        items.append((row(*key, run_id="new", hardware="ci-box", samples=samples, **extra), samples))
    RunWriter(tmp_path / "ci-box" / "new").extend(items)
    return tmp_path / "ci-box" / "new"


def test_aa_across_hardware_passes_and_is_refused_without_the_flag(base: Path, tmp_path: Path, capsys) -> None:
    new = _new(tmp_path)
    result = compare_speedups_only(load_run(base), load_run(new), CI)
    assert result.across_hardware and result.exit_code() == 0
    assert set(result.speedups["verdict"]) <= {"SAME", "AMBIGUOUS"} and len(result.speedups) == len(KEYS) // 2
    assert main(["compare", str(base), str(new)]) == 2
    capsys.readouterr()
    assert main(["compare", str(base), str(new), "--speedups-only", "--threshold", "0.67"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASS | deploy/train speedups only (laptop -> ci-box)")
    first = result.speedups.iloc[0]
    line = next(line for line in out.splitlines() if line.startswith(f"{first.model}  "))
    assert f"{first.speedup_base:.2f}x [" in line and line.split()[-1] in ("SAME", "AMBIGUOUS")


def test_a_collapsed_speedup_is_smaller_and_fails(base: Path, tmp_path: Path, capsys) -> None:
    new = _new(tmp_path, scale={k: 1.0 for k in AS_BASE})
    result = compare_speedups_only(load_run(base), load_run(new), CI)
    verdicts = result.speedups.set_index("model")["verdict"]
    assert set(verdicts[MODELS[0]]) == {"SMALLER"} and set(verdicts.drop(MODELS[0])) <= {"SAME", "AMBIGUOUS"}
    assert result.exit_code() == 1 and result.failures() == [f"{len(verdicts[MODELS[0]])} speedup(s) SMALLER"]
    assert main(["compare", str(base), str(new), "--speedups-only", "--threshold", "0.67", "--markdown"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("## Deploy/train speedup comparison") and f"| {MODELS[0]} |" in out


def test_deploy_no_longer_faster_is_lost_even_within_the_threshold(base: Path, tmp_path: Path) -> None:
    slow_deploy = {k: 1.55 for k in KEYS if k[0] == MODELS[1] and k[1] == "deploy"}
    result = compare_speedups_only(load_run(base), load_run(_new(tmp_path, scale=slow_deploy)), CI)
    lost = result.speedups[result.speedups["verdict"].eq(LOST)]
    assert set(lost["model"]) == {MODELS[1]} and (lost["change"] > 1 / 1.67).all()
    assert "deploy no longer faster than train by 5%" in lost["note"].iloc[0]
    assert result.exit_code() == 1 and "LOST" in result.failures()[0]


def test_a_missing_pair_and_a_gate_regression_fail(base: Path, tmp_path: Path, capsys) -> None:
    gone = next(k for k in KEYS if k[1] == "deploy" and k[0] == MODELS[2])
    bad = next(k for k in KEYS if k[1] == "deploy" and k[0] == MODELS[3])
    new = _new(tmp_path, drop=(gone,), status={bad: {"status": "mismatch", "max_abs_err": 0.3, "tolerance": 1e-4}})
    result = compare_speedups_only(load_run(base), load_run(new), CI)
    missing = result.speedups[result.speedups["verdict"].eq("MISSING")]
    assert sorted(zip(missing["model"], missing["batch_size"])) == sorted([gone[::2], bad[::2]])
    assert result.failures() == ["2 speedup(s) MISSING", "1 correctness gate regression(s) (ok -> mismatch)"]
    assert main(["compare", str(base), str(new), "--speedups-only", "--json"]) == 1
    assert '"mode": "speedups-only"' in capsys.readouterr().out


def test_flags_that_do_not_apply_are_refused(base: Path, capsys) -> None:
    assert main(["compare", str(base), str(base), "--speedups-only", "--fail-on", "memory"]) == 2
    assert "do not apply with --speedups-only" in capsys.readouterr().err


def test_the_committed_cpu_baseline_covers_the_ci_sweep() -> None:
    """`.ci/run` compares a run of ci-sweep.toml with this file: every pair must be there, timed as a pair
    (a paired speedup with its interval), deploy clearly faster."""
    from bench.sweep.plan.config import load_file

    baseline = load_run(REPO / "results" / "baselines" / "intel-xeon.parquet")
    result = compare_speedups_only(baseline, baseline, CI)
    config = load_file(REPO / "results" / "baselines" / "ci-sweep.toml")
    assert sorted(result.speedups["model"]) == sorted(config.values("model")), (
        "results/baselines/intel-xeon.parquet must be a run of results/baselines/ci-sweep.toml: "
        "bench run --config results/baselines/ci-sweep.toml, then bench baseline update RUN_DIR")
    assert result.speedups["paired_base"].all(), "the baseline's speedups must come from paired timing"
    assert (result.speedups["speedup_lo_base"] > 1.2).all() and result.exit_code() == 0


@pytest.mark.parametrize("source", ["unpaired", "paired"])
def test_report_and_compare_print_the_same_speedups(base: Path, source: str) -> None:
    """One definition of a run's speedup: the report's table and compare's baseline column agree, interval
    and its name included (the committed paired baseline, and an older unpaired run)."""
    from bench.report.tables import speedup_table
    from bench.results.read import load

    path = base if source == "unpaired" else REPO / "results" / "baselines" / "intel-xeon.parquet"
    report = speedup_table(load(path)).set_index(["model", "batch_size"]).sort_index()
    compared = compare_speedups_only(load_run(path), load_run(path), CI).speedups
    compared = compared.set_index(["model", "batch_size"]).sort_index()
    assert len(report) == len(compared) > 0
    for name in ("speedup", "speedup_lo", "speedup_hi"):
        np.testing.assert_allclose(report[name], compared[f"{name}_base"], rtol=1e-12)
    assert list(report["speedup_interval"]) == list(compared["speedup_interval_base"])
    kind = "95% CI of paired block ratios" if source == "paired" else "(unpaired)"
    assert all(kind in k for k in report["speedup_interval"])
