"""`bench gpu-check` on the CPU: the no-CUDA exit, the budget, and the verdicts read from real outputs (a
real pytest run's JUnit XML, a real CPU sweep's result folder). The GPU numbers come from a GPU machine."""

from __future__ import annotations

import dataclasses
import json
import os
import re
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
from bench.gpucheck.plan import Estimate, make_plan
from bench.gpucheck.steps import Finished, Step, Verdict, python, run_steps

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_without_cuda_it_exits_2_at_once_and_writes_nothing(tmp_path):
    out = tmp_path / "check"
    result = subprocess.run([sys.executable, "-m", "bench", "gpu-check", "--presets", "blog,paper", "--out", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "needs a CUDA GPU" in result.stderr and "torch.cuda.is_available() is False" in result.stderr
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_the_prepared_command_plans_within_its_budget_on_a_machine_without_a_gpu():
    result = subprocess.run([sys.executable, "-m", "bench", "gpu-check", "--presets", "blog,paper", "--budget-s", "540",
                             "--dry-run", "--assume", "h200"], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    planned = re.fullmatch(r"planned: (\d+) s of 540 s", lines[-1])
    assert planned and int(planned.group(1)) <= 540, lines[-1]
    names = [re.match(r"\s*\d+\. (\S+)", line).group(1) for line in lines if re.match(r"\s*\d+\. ", line)]
    assert names.index("xcheck") < names.index("preset-blog") < names.index("preset-paper")
    assert "big" not in names  # the paper preset times RepVGG-B3 at batch 128 already
    assert all(re.search(r"est +\d+ s", line) for line in lines if re.match(r"\s*\d+\. ", line))


def _echo(text: str) -> list[str]:
    return python("-c", f"print({text!r})")


def _step(name: str, argv, evaluate, expected_s: float = 1.0, least_s: float | None = None,
          resumable: bool = False) -> Step:
    estimate = Estimate(expected_s, expected_s, expected_s if least_s is None else least_s)
    return Step(name, name, argv, evaluate, lambda profile: estimate, resumable)


def _planned(steps: list[Step], budget_s: float, timeouts: dict[str, float] | None = None):
    plan = make_plan(steps, lambda step: step.estimate(None), budget_s)
    return [dataclasses.replace(p, timeout_s=(timeouts or {}).get(p.step.name, p.timeout_s)) for p in plan]


def test_budget_runs_what_fits_times_out_what_hangs_and_skips_the_rest(tmp_path):
    out = tmp_path / "check"
    steps = [
        _step("quick", lambda w: _echo("42 ms"), verdicts.tail),
        _step("hang", lambda w: python("-c", "import time; time.sleep(60)"), verdicts.tail),
        _step("late", lambda w: _echo("never"), verdicts.tail, expected_s=10_000),
        _step("broken", lambda w: python("-c", "import sys; print('boom'); sys.exit(3)"), verdicts.tail),
    ]
    seen = []
    results = run_steps(_planned(steps, 120, {"hang": 2}), out, budget_s=120, print_fn=lambda line: None,
                        after_each=lambda done: seen.append(len(done)))
    assert seen == [1, 2, 3, 4]  # the summary is rewritten after every step
    by_name = {r.name: r.verdict for r in results}
    assert by_name["quick"].verdict == "PASS" and by_name["quick"].lines == ("42 ms",)
    assert by_name["hang"].verdict == "FAIL" and "killed at its timeout of 2 s" in by_name["hang"].lines[0]
    assert by_name["late"].verdict == "SKIP" and "needs about 10000 s" in by_name["late"].lines[0]
    assert by_name["broken"].verdict == "FAIL" and by_name["broken"].lines[:2] == ("exit code 3", "boom")
    assert "# exit 3" in (out / "logs" / "broken.log").read_text()

    summary_path, archive = summary.write(out, results, ["- header line"])
    text = summary_path.read_text()
    assert "overall **FAIL**" in text and "### late: SKIP" in text and "- 42 ms" in text
    with tarfile.open(archive) as tar:
        assert "check/summary.md" in tar.getnames() and "check/logs/quick.log" in tar.getnames()


def test_a_step_cut_by_the_budget_warns_instead_of_failing(tmp_path):
    step = _step("long", lambda w: python("-c", "import time; time.sleep(60)"), verdicts.tail, expected_s=1)
    [planned] = _planned([step], 10_000)
    [result] = run_steps([planned], tmp_path / "check", budget_s=38, print_fn=lambda line: None)
    assert result.verdict.verdict == "WARN" and "budget ran out" in result.verdict.lines[0]
    assert summary.overall([result]) == "WARN"


def test_a_stopped_step_gets_sigterm_first_so_a_sweep_can_keep_what_it_finished(tmp_path, monkeypatch):
    """SIGTERM, then SIGKILL GRACE_S later: a `bench run` ends its unit in flight and writes its tables."""
    from bench.gpucheck import plan, steps as steps_module

    monkeypatch.setattr(steps_module, "GRACE_S", 5.0)
    script = ("import signal, sys, time\n"
              "signal.signal(signal.SIGTERM, lambda *a: (print('stopped cleanly', flush=True), sys.exit(143)))\n"
              "time.sleep(60)")
    step = _step("sweep", lambda w: python("-c", script), lambda done: Verdict("PASS", (done.stdout.strip(),)),
                 resumable=True)
    [planned] = _planned([step], 10_000, {"sweep": 2})
    [result] = run_steps([planned], tmp_path / "check", budget_s=10_000, print_fn=lambda line: None)
    assert result.verdict.lines == ("stopped cleanly",) and result.seconds < plan.GRACE_S


def test_every_step_times_out_well_beyond_its_estimate():
    """A step's own timeout is twice its estimate and at least a minute more: a cold machine is slow, and a
    check killed by its own timeout says nothing about the GPU."""
    from bench.gpucheck.checks import steps
    from bench.gpucheck.plan import PROFILES

    for planned in make_plan(steps(["blog", "paper"]), lambda s: s.estimate(PROFILES["h200"]), 10_000):
        expected = planned.estimate.expected_s
        assert planned.timeout_s >= max(2 * expected, expected + 60), planned.step.name


def test_the_plan_fits_the_budget_and_a_preset_that_does_not_fit_is_cut_to_resume():
    from bench.gpucheck.checks import steps
    from bench.gpucheck.plan import PROFILES, RESERVE_S, planned_total_s

    all_steps = steps(["blog", "paper"])
    for budget in (60, 200, 300, 540, 900):
        plan = make_plan(all_steps, lambda s: s.estimate(PROFILES["h200"]), budget)
        assert planned_total_s(plan) <= budget, budget
    plan = {p.step.name: p for p in make_plan(all_steps, lambda s: s.estimate(PROFILES["h200"]), 250)}
    paper = plan["preset-paper"]
    assert 0 < paper.planned_s < paper.estimate.expected_s and "resumes next time" in paper.note
    assert plan["pytest"].planned_s == 0 and plan["pytest"].note.startswith("not planned")
    assert RESERVE_S > 0


def test_a_sweeps_estimate_follows_its_caps_and_its_cells():
    """Not a constant: the paper preset's estimate moves with its [timing] caps and its axes."""
    from bench.gpucheck.checks import preset_config
    from bench.gpucheck.plan import PROFILES, sweep_estimate
    from bench.sweep.plan.config import with_overrides

    h200, paper = PROFILES["h200"], preset_config("paper")
    base = sweep_estimate(h200, paper)
    assert base.expected_s < base.cap_s and base.least_s < base.expected_s
    assert "16 units (16 pairs), 16 workers" in base.detail
    one_worker = with_overrides(paper, {"model": ["repvgg_a0"], "batch_size": [1, 8, 32, 128]})
    longer = dataclasses.replace(one_worker, timing=dataclasses.replace(paper.timing, min_time_s=3.0, timeout_s=20.0))
    assert sweep_estimate(h200, longer).expected_s > sweep_estimate(h200, one_worker).expected_s + 4 * 1.5
    assert sweep_estimate(h200, longer).cap_s > sweep_estimate(h200, one_worker).cap_s + 4 * 9
    fewer = with_overrides(paper, {"model": ["repvgg_a0", "resnet18"]})
    assert sweep_estimate(h200, fewer).expected_s < base.expected_s / 4
    bigger = with_overrides(paper, {"model": ["repvgg_b3"], "batch_size": [256]})
    smaller = with_overrides(paper, {"model": ["repvgg_b3"], "batch_size": [1]})
    assert sweep_estimate(h200, bigger).expected_s > sweep_estimate(h200, smaller).expected_s


def _pytest_run(tmp_path: Path, body: str, **modules: str) -> Finished:
    """A real `pytest -m gpu` run as gpu-check's pytest step runs it (with its plugin), on tiny modules."""
    tests = tmp_path / "t" / "test_tiny.py"
    tests.parent.mkdir()
    tests.write_text(textwrap.dedent(body))
    for name, text in modules.items():
        (tests.parent / f"{name}.py").write_text(textwrap.dedent(text))
    (tests.parent / "pytest.ini").write_text("[pytest]\nmarkers =\n    gpu: needs a GPU\n")
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "-p",
                           "bench.gpucheck.pytest_plugin", "--continue-on-collection-errors",
                           f"--rootdir={tests.parent}", f"--junitxml={work / 'pytest.xml'}", str(tests.parent)],
                          capture_output=True, text=True, timeout=120, cwd=tests.parent, env=env)
    return Finished(proc.returncode, proc.stdout, proc.stderr, 1.0, 60.0, work)


def test_junit_verdict_from_a_real_pytest_run(tmp_path):
    done = _pytest_run(tmp_path, """
        import pytest
        pytestmark = pytest.mark.gpu
        def test_ok(): assert True
        def test_bad(): assert 1 == 2
        @pytest.mark.skip(reason="NVML has no energy counter here")
        def test_skipped(): pass
    """)
    verdict = verdicts.junit(done)
    assert verdict.verdict == "FAIL"
    assert verdict.lines[0] == "3 gpu tests: 1 passed, 1 failed, 1 skipped"
    assert any("test_bad" in line for line in verdict.lines)
    assert any("NVML has no energy counter here" in line for line in verdict.lines)


def test_junit_skips_alone_warn(tmp_path):
    done = _pytest_run(tmp_path, """
        import pytest
        @pytest.mark.gpu
        def test_ok(): pass
        @pytest.mark.gpu
        def test_skipped(): pytest.skip("no triton")
        def test_not_gpu(): pass
    """)
    verdict = verdicts.junit(done)
    assert verdict.verdict == "WARN" and verdict.lines[0] == "2 gpu tests: 1 passed, 0 failed, 1 skipped"


def test_modules_a_gpu_machine_cannot_import_are_not_gpu_test_outcomes(tmp_path):
    """The GPU machine has no nbformat or ray: their test modules skip at collection (module-level
    importorskip), which lands in the JUnit file as a skipped case. The gpu tests' own outcomes decide."""
    done = _pytest_run(tmp_path, """
        import pytest
        @pytest.mark.gpu
        def test_ok(): pass
    """, test_notebooks="""
        import pytest
        nbformat = pytest.importorskip("nbformat_not_installed_here")
        def test_notebook(): pass
    """)
    verdict = verdicts.junit(done)
    assert verdict.verdict == "PASS", verdict.lines
    assert verdict.lines[0] == "1 gpu tests: 1 passed, 0 failed, 0 skipped"
    assert any(line.startswith("INFO: not collected (skipped): ") and "nbformat_not_installed_here" in line
               for line in verdict.lines)


def test_a_module_that_fails_to_import_warns(tmp_path):
    done = _pytest_run(tmp_path, """
        import pytest
        @pytest.mark.gpu
        def test_ok(): pass
    """, test_broken="""
        import a_module_that_does_not_exist
    """)
    verdict = verdicts.junit(done)
    assert verdict.verdict == "WARN" and any(line.startswith("not collected (error)") for line in verdict.lines)


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


def test_the_timer_cross_check_compares_the_closest_neighbouring_runs():
    """Recorded runs on a card whose clock drifts down by 4% between the first two and the last two runs:
    the harness's first run beside triton's first agrees, which a single pair taken at different moments
    (harness early, triton late) would not."""
    from bench.gpucheck.xcheck import closest_gap

    assert closest_gap([10.0, 10.4], [10.0, 10.4]) == 0.0
    assert closest_gap([10.0, 10.4], [10.4, 10.8]) == pytest.approx(0.0)  # triton's first, harness's second
    assert closest_gap([10.0, 10.0], [10.5, 10.6]) == pytest.approx(10.0 / 10.5 - 1)
    record = {"form": "deploy", "batch": 128, "pipelined_ms": [10.0, 10.4], "do_bench_ms": [10.41, 10.8],
              "cudagraph_ms": [9.8, 10.2], "do_bench_cudagraph_ms": [10.19, 10.6]}
    done = Finished(0, json.dumps(record) + "\n", "", 1.0, 60.0, Path("."))
    verdict = verdicts.xcheck(done)
    assert verdict.verdict == "PASS", verdict.lines
    assert "10/10.4 ms vs do_bench 10.41/10.8" in verdict.lines[1]


def _cuda_rows(**changes) -> pd.DataFrame:
    """The committed CPU run's rows, turned into what a healthy GPU's rows hold (NVML power present)."""
    rows = pd.read_csv(REPO / "results" / "amd-epyc" / "smoke-633d18a2" / "summary.csv")
    rows = rows.assign(device="cuda", power_w_mean=350.0, throttled=False, pct_of_peak=40.0)
    return rows.assign(**changes)


def test_a_healthy_gpus_expected_conditions_are_info_not_warn():
    """Batch-1 eager rows are host-bound by nature; fp32 convs can pass the dense peak through Winograd.
    Both are INFO lines with their reason, and the check PASSes."""
    rows = _cuda_rows(batch_size=1)
    rows["host_enqueue_ms_median"] = rows["latency_ms_median"]  # the host sets the pace
    rows.loc[0, "pct_of_peak"] = 180.0
    verdict = verdicts.rows_verdict(rows)
    assert verdict.verdict == "PASS", verdict.lines
    info = [line for line in verdict.lines if line.startswith("INFO: ")]
    assert len(info) == len(rows) + 1 and any("Winograd" in line for line in info)
    assert any("host-bound" in line and "cudagraph row" in line for line in info)


def test_what_needs_a_human_still_warns():
    rows = _cuda_rows()
    rows.loc[0, ["precision", "pct_of_peak"]] = ["fp16", 130.0]  # no Winograd excuse in fp16
    rows.loc[1, "throttled"] = True
    verdict = verdicts.rows_verdict(rows)
    assert verdict.verdict == "WARN"
    warnings = [line for line in verdict.lines if "% of dense peak. " in line or ": throttled (" in line]
    assert len(warnings) == 2 and not any(line.startswith("INFO: ") for line in warnings), verdict.lines


def _preset_run(tmp_path: Path):
    """A copy of the committed blog run, as the blog preset's run folder of a cut gpu-check."""
    from bench.gpucheck.checks import preset_config
    from bench.sweep.plan.cells import expand
    from bench.sweep.driver.runner import SweepPlan

    source = REPO / "results" / "amd-epyc" / "blog-4346c769"
    run_dir = tmp_path / "results" / "amd-epyc" / source.name
    shutil.copytree(source, run_dir, ignore=shutil.ignore_patterns("report"))
    config = preset_config("blog")
    return SweepPlan(config=config, device="cuda", hardware="amd-epyc", run_id=source.name, run_dir=run_dir,
                     cells=expand(config, "cuda"))


def test_a_preset_cut_by_the_budget_warns_and_says_it_resumes_and_the_summary_leads_with_its_results(tmp_path):
    plan = _preset_run(tmp_path)
    done = Finished(143, "run blog-... on cuda\n", "terminated (SIGTERM)\n", 90.0, 100.0, tmp_path)
    verdict = verdicts.preset(done, plan)
    assert verdict.verdict in ("WARN", "FAIL") and verdict.lines[0].startswith("cut by the budget: ")
    assert "the same command resumes it" in verdict.lines[0] and "of 16 cells" in verdict.lines[0]
    blog_output = ('cuda, batch 128\n{"device": "cuda", "batch": 128, "resolution": 224, "naive_ratio": 61.2, '
                   '"harness_ratio": 1.41}\n')
    results = [_result("preset-blog", verdict),
               _result("blog", verdicts.blog(Finished(0, blog_output, "", 9.0, 60.0, tmp_path)))]
    out = tmp_path / "check"
    out.mkdir()
    summary_path, archive = summary.write(out, results, ["- header"], [("blog", plan.run_dir)],
                                          archive=tmp_path / "one.tar.gz")
    text = summary_path.read_text()
    assert text.index("## Results: preset blog") < text.index("## Checks")
    assert "| blog_repvgg | 8 | fp32 |" in text and "the post's timer: 61.20x; the harness: 1.41x" in text
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert f"check/results/amd-epyc/{plan.run_id}/summary.parquet" in names and "check/summary.md" in names


def _result(name: str, verdict: Verdict):
    from bench.gpucheck.steps import StepResult

    return StepResult(name, name, verdict, 1.0, "cmd", 2.0)


def test_a_presets_run_id_names_the_gpu_kind_not_the_lent_machine(monkeypatch):
    """Each lent machine is fresh (its own machine id): gpu-check's presets hash the hardware id instead,
    so the next machine of the same kind resumes a cut preset from the committed folder."""
    from bench.gpucheck.checks import preset_config
    from bench.sweep.plan import config as sweep_config

    paper, ids = preset_config("paper"), {}
    for machine in ("lent-machine-a", "lent-machine-b"):
        monkeypatch.setattr(sweep_config, "machine_id", lambda machine=machine: machine)
        ids[machine] = (paper.run_id("cuda", machine="nvidia-h200-141gb"), paper.run_id("cuda"))
    (kind_a, own_a), (kind_b, own_b) = ids.values()
    assert kind_a == kind_b and kind_a.startswith("paper-") and own_a != own_b
    assert paper.run_id("cuda", machine="nvidia-h100-80gb-hbm3") != kind_a


def test_bad_input_is_refused_before_anything_runs(capsys, tmp_path):
    from bench import cli

    for argv, message in ((["--presets", "blog,nope"], "preset 'nope' is unknown; known: blog, full, paper, smoke"),
                          (["--presets", "blog,smok"], "preset 'smok' is unknown (did you mean 'smoke'?)"),
                          (["--budget-s", "0"], "--budget-s must be > 0"),
                          (["--assume", "h200"], "--assume plans for another device: use it with --dry-run")):
        assert cli.main(["gpu-check", *argv, "--out", str(tmp_path / "x")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
