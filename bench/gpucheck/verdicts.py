"""Reading each step's output into a verdict and the numbers behind it.

WARN is for what a human should look at; conditions a healthy GPU shows by nature are INFO lines with
their reason (`steps.INFO`), which never raise a verdict: batch-1 eager rows are host-bound, fp32 rows can
pass the dense peak through Winograd, a module the machine cannot import is not a gpu test's outcome.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bench.gpucheck.pytest_plugin import GPU_PROPERTY
from bench.gpucheck.steps import INFO, Finished, Verdict
from bench.measure.compile_cache import INDUCTOR_RUNTIMES
from bench.results.layout import SUMMARY_CSV, SUMMARY_FILE
from bench.measure.cuda_regimes import HOST_BOUND_RATIO as HOST_BOUND  # enqueue >= 0.9 x latency
from bench.sweep.driver.verdict import EXIT_TERMINATED  # a `bench run` stopped by SIGTERM (the budget, here)

if TYPE_CHECKING:
    from bench.sweep.driver.runner import SweepPlan

XCHECK_PASS, XCHECK_WARN = 0.03, 0.10  # relative disagreement with triton's timers at batch 128
PEAK_WORDING = ("pct_of_peak counts dense MACs: above 100% in fp32 can be correct where cuDNN picks "
                "Winograd for 3x3 stride-1 convs; check the kernel names (`bench profile`) before calling "
                "it a timing bug")
WINOGRAD_MAX_GAIN = 4.0
"""Most multiplies Winograd saves on the 3x3 convs cuDNN runs this way in fp32: F(4x4, 3x3) computes 16
outputs with 36 multiplies instead of 144. An fp32 row up to 4x the dense peak is explained by it (INFO);
beyond it, or in another precision, it is a timing or MAC bug to look at (WARN)."""


def tail(done: Finished, lines: int = 8) -> Verdict:
    """PASS on exit 0, with the last lines of stdout as the numbers."""
    return Verdict("PASS", tuple(done.stdout.strip().splitlines()[-lines:]))


def _first_line(node: ElementTree.Element) -> str:
    """A failure's message, or a skip's reason (a collection skip's message says only "collection skipped";
    its text holds the reason)."""
    text = ((node.text if node.tag == "skipped" else None) or node.get("message") or node.text or "").strip()
    return text.splitlines()[0] if text else ""


def junit(done: Finished) -> Verdict:
    """pytest's JUnit XML (`--junitxml=<work>/pytest.xml`, with `bench.gpucheck.pytest_plugin`), counting the
    gpu tests' own outcomes: failures and errors FAIL, skips WARN (with reasons). A module that was not
    collected is no gpu test's outcome: skipped at collection (a module-level importorskip of a package this
    machine lacks) is INFO; an error at collection WARNs (its gpu tests, if any, did not run)."""
    root = ElementTree.parse(done.work_dir / "pytest.xml").getroot()
    cases, failed, skipped, notes = 0, [], [], []
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        if GPU_PROPERTY not in {(p.get("name"), p.get("value")) for p in case.iter("property")}:
            notes += [f"{INFO}not collected (skipped): {case.get('name', '')}: {_first_line(n)}"
                      for n in case.findall("skipped")]
            notes += [f"not collected (error): {case.get('name', '')}: {_first_line(n)}"
                      for n in (*case.findall("error"), *case.findall("failure"))]
            continue
        cases += 1
        failed += [f"{kind} {name}: {_first_line(n)}" for kind in ("failure", "error") for n in case.findall(kind)]
        skipped += [f"skipped {name}: {n.get('message', '')}" for n in case.findall("skipped")]
    if not cases:
        return Verdict("FAIL", ("no gpu test ran (none collected)", *notes))
    counts = f"{cases} gpu tests: {cases - len(failed) - len(skipped)} passed, {len(failed)} failed, {len(skipped)} skipped"
    errors = [n for n in notes if not n.startswith(INFO)]
    verdict = "FAIL" if failed else "WARN" if skipped or errors else "PASS"
    return Verdict(verdict, (counts, *failed, *skipped, *errors, *(n for n in notes if n.startswith(INFO))))


def load_rows(folder: Path) -> pd.DataFrame:
    """Every result row under `folder` (the `summary.csv` of each run folder `bench run` wrote)."""
    tables = [pd.read_csv(path) for path in sorted(folder.rglob(SUMMARY_CSV))]
    if not tables:
        raise FileNotFoundError(f"no {SUMMARY_CSV} under {folder}: the sweep wrote no results")
    return pd.concat(tables, ignore_index=True)


def _number(value: object, fmt: str) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    return "-" if math.isnan(number) else format(number, fmt)


def _label(row: pd.Series) -> str:
    return f"{row['model']} {row['form']} {row['precision']} {row['runtime']} b{row['batch_size']}"


def _row_line(row: pd.Series) -> str:
    return (f"{_label(row)} r{row['resolution']}: {row['status']}, median "
            f"{_number(row.get('latency_ms_median'), '.4g')} ms (n={_number(row.get('n_samples'), '.0f')}, "
            f"{row.get('stop_reason', '-')}), {_number(row.get('pct_of_peak'), '.1f')}% of dense peak, "
            f"{_number(row.get('power_w_mean'), '.0f')} W, throttled={row.get('throttled', '-')}")


def row_notes(row: pd.Series) -> list[str]:
    """What an ok CUDA row says beyond its numbers: INFO lines for what a healthy GPU shows by nature, with
    the reason; plain lines (WARN) for what a human should look at."""
    notes, label = [], _label(row)
    pct = float(row.get("pct_of_peak", math.nan))
    if pct > 100:
        winograd = row["precision"] == "fp32" and pct <= 100 * WINOGRAD_MAX_GAIN
        notes.append(f"{INFO if winograd else ''}{label}: {pct:.0f}% of dense peak. {PEAK_WORDING}")
    host, latency = float(row.get("host_enqueue_ms_median", math.nan)), float(row.get("latency_ms_median", math.nan))
    if row.get("device") == "cuda" and row["runtime"] == "eager" and host >= HOST_BOUND * latency:
        notes.append(f"{INFO}{label}: host-bound (enqueue {host:.4g} ms >= {HOST_BOUND} x latency {latency:.4g} "
                     "ms): the host issues this forward slower than the GPU runs it, as it does at small batches "
                     "and for small networks; the cudagraph row of the setting gives the GPU time")
    if str(row.get("throttled")) == "True":
        notes.append(f"{label}: throttled ({row.get('throttle_reasons', '')}; SM clock "
                     f"{_number(row.get('sm_clock_mhz_mean'), '.0f')} MHz of "
                     f"{_number(row.get('sm_clock_mhz_reference'), '.0f')}, rule {row.get('throttle_rule', '-')})")
    if row.get("device") == "cuda" and pd.isna(row.get("power_w_mean")):
        notes.append(f"{label}: no NVML power reading")
    recompiles = pd.to_numeric(row.get("compile_recompiles"), errors="coerce")
    if row["runtime"] in INDUCTOR_RUNTIMES and pd.notna(recompiles) and recompiles > 0:
        notes.append(f"{label}: dynamo compiled {recompiles:.0f} frame(s) during timing: not every timed call "
                     "ran the graph the first call compiled")
    return notes


def rows_verdict(rows: pd.DataFrame) -> Verdict:
    """Any row not ok FAILs; what `row_notes` flags WARNs; INFO lines and every row's numbers follow."""
    bad = rows[rows["status"] != "ok"]
    failures = [f"{_label(r)}: {r['status']} {r.get('error', '')}" for _, r in bad.iterrows()]
    notes = [n for _, r in rows[rows["status"] == "ok"].iterrows() for n in row_notes(r)]
    warnings = [n for n in notes if not n.startswith(INFO)]
    verdict = "FAIL" if failures else "WARN" if warnings else "PASS"
    return Verdict(verdict, (*failures, *warnings, *(n for n in notes if n.startswith(INFO)),
                             *(_row_line(r) for _, r in rows.iterrows())))


def results(done: Finished) -> Verdict:
    """A `bench run` into `<work>/results` (`rows_verdict`)."""
    return rows_verdict(load_rows(done.work_dir / "results"))


def preset(done: Finished, plan: SweepPlan) -> Verdict:
    """A `bench run --preset` (`plan`: its `bench.sweep.driver.runner.SweepPlan`): its rows as `rows_verdict`
    judges them, and how far it got. Cut by the budget (stopped at its timeout, or exit 143 after the
    SIGTERM) is a WARN that says the same command resumes it; another failed exit FAILs."""
    from bench.results import load
    from bench.results.io import CELLS_DIR, RunWriter

    run_dir, total = Path(plan.run_dir), len(plan.cells)
    cut = done.timed_out or done.returncode == EXIT_TERMINATED
    if (run_dir / CELLS_DIR).is_dir():
        RunWriter(run_dir)  # opening the folder rebuilds its tables from the cell files (a killed sweep's too)
    if not (run_dir / SUMMARY_FILE).is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return Verdict("WARN" if cut else "FAIL", (f"no rows in {run_dir}: the sweep wrote nothing", *tail))
    rows = load(run_dir)
    judged = rows_verdict(rows[rows["status"] != "skipped"])
    done_line = f"{len(rows)} of {total} cells in {run_dir}"
    if cut:
        return Verdict("FAIL" if judged.verdict == "FAIL" else "WARN",
                       (f"cut by the budget: {done_line}; the same command resumes it (finished cells are kept)",
                        *judged.lines))
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return Verdict("FAIL", (f"exit code {done.returncode}: {done_line}", *tail, *judged.lines))
    return Verdict(judged.verdict, (done_line, *judged.lines))


def blog(done: Finished) -> Verdict:
    """`bench.gpucheck.blog_timer`: the post's ratio beside the harness's (reported, not judged)."""
    lines = done.stdout.strip().splitlines()
    record = json.loads(lines[-1])
    return Verdict("PASS", (f"the post's timer: {record['naive_ratio']:.2f}x; the harness: "
                            f"{record['harness_ratio']:.2f}x (batch {record['batch']}, {record['resolution']}x"
                            f"{record['resolution']}, {record['device']})", *lines[:-1]))


def runtime_results(done: Finished) -> Verdict:
    """The runtime ladder step: like `results`, except that a runtime this machine lacks (a skipped row:
    no TensorRT, a CPU-only onnxruntime) WARNs with its reason instead of failing the step."""
    rows = load_rows(done.work_dir / "results")
    skipped = rows[rows["status"] == "skipped"]
    reasons = sorted({f"{r['runtime']} not measured: {r.get('skip_reason') or r.get('error')}"
                      for _, r in skipped.iterrows()})
    ran = rows[rows["status"] != "skipped"]
    if ran.empty:
        return Verdict("WARN", ("no runtime of the ladder could run here", *reasons))
    measured = rows_verdict(ran)
    verdict = measured.verdict if measured.verdict == "FAIL" or not reasons else "WARN"
    return Verdict(verdict, (*reasons, *measured.lines))


def xcheck(done: Finished) -> Verdict:
    """`bench.gpucheck.xcheck` JSON lines: the harness's timers against triton's on the same callable."""
    from bench.gpucheck.xcheck import closest_gap

    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if not records:
        return Verdict("FAIL", ("the cross-check printed no measurement",))
    worst, lines = 0.0, []
    for r in records:
        pairs = (("pipelined_ms", "do_bench_ms"), ("cudagraph_ms", "do_bench_cudagraph_ms"))
        gaps = {ours: closest_gap(r[ours], r[theirs]) for ours, theirs in pairs}
        if r["batch"] >= 128:
            worst = max(worst, *(abs(g) for g in gaps.values()))
        runs = {key: "/".join(f"{v:.4g}" for v in r[key]) for key in r if key.endswith("_ms")}
        lines.append(f"{r['form']} b{r['batch']}: pipelined {runs['pipelined_ms']} ms vs do_bench "
                     f"{runs['do_bench_ms']} ({gaps['pipelined_ms']:+.1%}); cudagraph {runs['cudagraph_ms']} "
                     f"vs do_bench_cudagraph {runs['do_bench_cudagraph_ms']} ({gaps['cudagraph_ms']:+.1%})")
    verdict = "PASS" if worst <= XCHECK_PASS else "WARN" if worst <= XCHECK_WARN else "FAIL"
    return Verdict(verdict, (f"largest disagreement at batch >= 128: {worst:.1%}, each timer's runs alternating "
                             f"with triton's and the closest neighbouring pair compared (PASS <= "
                             f"{XCHECK_PASS:.0%}, WARN <= {XCHECK_WARN:.0%}; batch 1 is reported, not judged)",
                             *lines))


def nvml(done: Finished) -> Verdict:
    """`bench.gpucheck.nvml_probe`: FAIL without NVML, WARN where a counter the cells record is unsupported."""
    report = json.loads(done.stdout.strip().splitlines()[-1])
    lines = tuple(f"{key}: {value}" for key, value in report.items())
    if not report.get("nvml"):
        return Verdict("FAIL", lines)
    missing = [key for key in ("energy_mj", "clocks_event_reasons", "sm_clock_mhz", "power_mw")
               if report.get(key) in (None, "unsupported")]
    return Verdict("WARN" if missing else "PASS", (*(f"unsupported: {k}" for k in missing), *lines))
