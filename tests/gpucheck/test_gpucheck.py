"""`bench gpu-check` on the CPU: the no-CUDA exit, the budget, and the verdicts read from real outputs (a
real pytest run's JUnit XML, a real CPU sweep's result folder). The GPU numbers come from a GPU machine."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench.gpucheck import summary, verdicts
from bench.gpucheck.steps import Finished, Step, python, run_steps

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_without_cuda_it_exits_2_at_once_and_writes_nothing(tmp_path):
    out = tmp_path / "check"
    result = subprocess.run([sys.executable, "-m", "bench", "gpu-check", "--out", str(out)], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "needs a CUDA GPU" in result.stderr and "torch.cuda.is_available() is False" in result.stderr
    assert not out.exists()


def _echo(text: str) -> list[str]:
    return python("-c", f"print({text!r})")


def test_budget_runs_what_fits_times_out_what_hangs_and_skips_the_rest(tmp_path):
    out = tmp_path / "check"
    steps = [
        Step("quick", "prints a line", lambda w: _echo("42 ms"), 60, 0, verdicts.tail),
        Step("hang", "sleeps past its timeout", lambda w: python("-c", "import time; time.sleep(60)"), 2, 0,
             verdicts.tail),
        Step("late", "needs more than is left", lambda w: _echo("never"), 60, 10_000, verdicts.tail),
        Step("broken", "exits 3", lambda w: python("-c", "import sys; print('boom'); sys.exit(3)"), 60, 0,
             verdicts.tail),
    ]
    results = run_steps(steps, out, budget_s=120, print_fn=lambda line: None)
    by_name = {r.name: r.verdict for r in results}
    assert by_name["quick"].verdict == "PASS" and by_name["quick"].lines == ("42 ms",)
    assert by_name["hang"].verdict == "FAIL" and "killed at its timeout of 2 s" in by_name["hang"].lines[0]
    assert by_name["late"].verdict == "SKIP" and "needs at least 10000 s" in by_name["late"].lines[0]
    assert by_name["broken"].verdict == "FAIL" and by_name["broken"].lines[:2] == ("exit code 3", "boom")
    assert "# exit 3" in (out / "logs" / "broken.log").read_text()

    summary_path, archive = summary.write(out, results, ["- header line"])
    text = summary_path.read_text()
    assert "Overall: **FAIL**" in text and "## late: SKIP" in text and "- 42 ms" in text
    with tarfile.open(archive) as tar:
        assert "check/summary.md" in tar.getnames() and "check/logs/quick.log" in tar.getnames()


def test_a_step_cut_by_the_budget_warns_instead_of_failing(tmp_path):
    step = Step("long", "sleeps", lambda w: python("-c", "import time; time.sleep(60)"), 60, 0, verdicts.tail)
    [result] = run_steps([step], tmp_path / "check", budget_s=2, print_fn=lambda line: None)
    assert result.verdict.verdict == "WARN" and "budget ran out" in result.verdict.lines[0]
    assert summary.overall([result]) == "WARN"


def _pytest_run(tmp_path: Path, body: str) -> Finished:
    tests = tmp_path / "t" / "test_tiny.py"
    tests.parent.mkdir()
    tests.write_text(textwrap.dedent(body))
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--rootdir={tests.parent}",
                           f"--junitxml={work / 'pytest.xml'}", str(tests)], capture_output=True, text=True,
                          timeout=120, cwd=tests.parent)
    return Finished(proc.returncode, proc.stdout, proc.stderr, 1.0, 60.0, work)


def test_junit_verdict_from_a_real_pytest_run(tmp_path):
    done = _pytest_run(tmp_path, """
        import pytest
        def test_ok(): assert True
        def test_bad(): assert 1 == 2
        @pytest.mark.skip(reason="NVML has no energy counter here")
        def test_skipped(): pass
    """)
    verdict = verdicts.junit(done)
    assert verdict.verdict == "FAIL"
    assert verdict.lines[0] == "3 tests: 1 passed, 1 failed, 1 skipped"
    assert any("test_bad" in line for line in verdict.lines)
    assert any("NVML has no energy counter here" in line for line in verdict.lines)


def test_junit_skips_alone_warn(tmp_path):
    done = _pytest_run(tmp_path, """
        import pytest
        def test_ok(): pass
        def test_skipped(): pytest.skip("no triton")
    """)
    assert verdicts.junit(done).verdict == "WARN"


def test_results_verdict_reads_a_real_cpu_run(tmp_path):
    source = REPO / "results" / "amd-epyc" / "smoke-633d18a2"
    work = tmp_path / "work"
    shutil.copytree(source, work / "results" / "amd-epyc" / source.name)
    rows = pd.read_csv(source / "summary.csv")
    verdict = verdicts.results(Finished(0, "", "", 1.0, 60.0, work))
    row_lines = [line for line in verdict.lines if " ms (n=" in line]
    assert len(row_lines) == len(rows)
    assert (rows["status"] == "ok").all() and rows["device"].eq("cpu").all()  # what the committed run holds
    assert verdict.verdict == "PASS"  # all ok, and the NVML and host-bound warnings are for CUDA rows only
    first = rows.iloc[0]
    assert row_lines[0].startswith(f"{first['model']} {first['form']} fp32 eager b{first['batch_size']}")
    assert f"median {first['latency_ms_median']:.4g} ms" in row_lines[0]


def test_results_verdict_without_results_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no summary.csv"):
        verdicts.results(Finished(0, "", "", 1.0, 60.0, tmp_path))


def test_runtime_ladder_verdict_warns_for_a_missing_runtime_and_fails_for_a_broken_one(tmp_path):
    source = REPO / "results" / "amd-epyc" / "smoke-633d18a2"
    rows = pd.read_csv(source / "summary.csv")
    missing = rows.iloc[[0]].assign(runtime="tensorrt", status="skipped",
                                    skip_reason="tensorrt runtime needs the tensorrt package")
    folder = tmp_path / "work" / "results" / "gpu" / "run"
    folder.mkdir(parents=True)
    pd.concat([rows, missing]).to_csv(folder / "summary.csv", index=False)
    verdict = verdicts.runtime_results(Finished(0, "", "", 1.0, 60.0, tmp_path / "work"))
    assert verdict.verdict == "WARN"
    assert "tensorrt not measured: tensorrt runtime needs the tensorrt package" in verdict.lines
    broken = rows.iloc[[1]].assign(runtime="onnxruntime", status="error", error="ProviderFallback")
    pd.concat([rows, missing, broken]).to_csv(folder / "summary.csv", index=False)
    assert verdicts.runtime_results(Finished(0, "", "", 1.0, 60.0, tmp_path / "work")).verdict == "FAIL"
