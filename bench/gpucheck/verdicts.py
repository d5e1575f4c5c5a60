"""Reading each step's output into a verdict and the numbers behind it."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pandas as pd

from bench.gpucheck.steps import Finished, Verdict
from bench.measure.cuda_regimes import HOST_BOUND_RATIO as HOST_BOUND  # enqueue >= 0.9 x latency

XCHECK_PASS, XCHECK_WARN = 0.03, 0.10  # relative disagreement with triton's timers at batch 128
PEAK_WORDING = ("pct_of_peak counts dense MACs: above 100% in fp32 can be correct where cuDNN picks "
                "Winograd for 3x3 stride-1 convs; check the kernel names (`bench profile`) before calling "
                "it a timing bug")


def tail(done: Finished, lines: int = 8) -> Verdict:
    """PASS on exit 0, with the last lines of stdout as the numbers."""
    return Verdict("PASS", tuple(done.stdout.strip().splitlines()[-lines:]))


def junit(done: Finished) -> Verdict:
    """pytest's JUnit XML (`--junitxml=<work>/pytest.xml`): failures and errors FAIL, skips WARN (reasons)."""
    root = ElementTree.parse(done.work_dir / "pytest.xml").getroot()
    cases = list(root.iter("testcase"))
    failed, skipped = [], []
    for case in cases:
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        for kind in ("failure", "error"):
            for node in case.findall(kind):
                failed.append(f"{kind} {name}: {(node.get('message') or '').splitlines()[:1]}")
        for node in case.findall("skipped"):
            skipped.append(f"skipped {name}: {node.get('message', '')}")
    counts = f"{len(cases)} tests: {len(cases) - len(failed) - len(skipped)} passed, {len(failed)} failed, " \
             f"{len(skipped)} skipped"
    if not cases:
        return Verdict("FAIL", ("no test ran (nothing collected)",))
    verdict = "FAIL" if failed else "WARN" if skipped else "PASS"
    return Verdict(verdict, (counts, *failed, *skipped))


def load_rows(folder: Path) -> pd.DataFrame:
    """Every result row under `folder` (the `summary.csv` of each run folder `bench run` wrote)."""
    tables = [pd.read_csv(path) for path in sorted(folder.rglob("summary.csv"))]
    if not tables:
        raise FileNotFoundError(f"no summary.csv under {folder}: the sweep wrote no results")
    return pd.concat(tables, ignore_index=True)


def _number(value: object, fmt: str) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    return "-" if math.isnan(number) else format(number, fmt)


def _row_line(row: pd.Series) -> str:
    return (f"{row['model']} {row['form']} {row['precision']} {row['runtime']} b{row['batch_size']} "
            f"r{row['resolution']}: {row['status']}, median {_number(row.get('latency_ms_median'), '.4g')} ms "
            f"(n={_number(row.get('n_samples'), '.0f')}, {row.get('stop_reason', '-')}), "
            f"{_number(row.get('pct_of_peak'), '.1f')}% of dense peak, "
            f"{_number(row.get('power_w_mean'), '.0f')} W, throttled={row.get('throttled', '-')}")


def _row_warnings(row: pd.Series) -> list[str]:
    warnings = []
    label = f"{row['model']} {row['form']} {row['precision']} {row['runtime']} b{row['batch_size']}"
    if float(row.get("pct_of_peak", math.nan)) > 100:
        warnings.append(f"{label}: {_number(row['pct_of_peak'], '.0f')}% of peak. {PEAK_WORDING}")
    host, latency = float(row.get("host_enqueue_ms_median", math.nan)), float(row.get("latency_ms_median", math.nan))
    if row.get("device") == "cuda" and row["runtime"] == "eager" and host >= HOST_BOUND * latency:
        warnings.append(f"{label}: host-bound (enqueue {host:.4g} ms >= {HOST_BOUND} x latency {latency:.4g} ms); "
                        "the cudagraph row gives the GPU time")
    if str(row.get("throttled")) == "True":
        warnings.append(f"{label}: throttled ({row.get('throttle_reasons', '')})")
    if row.get("device") == "cuda" and pd.isna(row.get("power_w_mean")):
        warnings.append(f"{label}: no NVML power reading")
    return warnings


def results(done: Finished) -> Verdict:
    """A `bench run` into `<work>/results`: any row not ok FAILs; over-peak, host-bound, throttled WARN."""
    return results_of(load_rows(done.work_dir / "results"))


def results_of(rows: pd.DataFrame) -> Verdict:
    """`results` on rows already read."""
    bad = rows[rows["status"] != "ok"]
    failures = [f"{r['model']} {r['form']} {r['precision']} {r['runtime']} b{r['batch_size']}: {r['status']} "
                f"{r.get('error', '')}" for _, r in bad.iterrows()]
    warnings = [w for _, r in rows[rows["status"] == "ok"].iterrows() for w in _row_warnings(r)]
    verdict = "FAIL" if failures else "WARN" if warnings else "PASS"
    return Verdict(verdict, (*failures, *warnings, *(_row_line(r) for _, r in rows.iterrows())))


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
    measured = results_of(ran)
    verdict = measured.verdict if measured.verdict == "FAIL" or not reasons else "WARN"
    return Verdict(verdict, (*reasons, *measured.lines))


def xcheck(done: Finished) -> Verdict:
    """`bench.gpucheck.xcheck` JSON lines: the harness's timers against triton's on the same callable."""
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if not records:
        return Verdict("FAIL", ("the cross-check printed no measurement",))
    worst, lines = 0.0, []
    for r in records:
        pairs = (("pipelined_ms", "do_bench_ms"), ("cudagraph_ms", "do_bench_cudagraph_ms"))
        gaps = {ours: r[ours] / r[theirs] - 1 for ours, theirs in pairs}
        if r["batch"] >= 128:
            worst = max(worst, *(abs(g) for g in gaps.values()))
        lines.append(f"{r['form']} b{r['batch']}: pipelined {r['pipelined_ms']:.4g} ms vs do_bench "
                     f"{r['do_bench_ms']:.4g} ({gaps['pipelined_ms']:+.1%}); cudagraph {r['cudagraph_ms']:.4g} "
                     f"vs do_bench_cudagraph {r['do_bench_cudagraph_ms']:.4g} ({gaps['cudagraph_ms']:+.1%})")
    verdict = "PASS" if worst <= XCHECK_PASS else "WARN" if worst <= XCHECK_WARN else "FAIL"
    return Verdict(verdict, (f"largest disagreement at batch >= 128: {worst:.1%} (PASS <= {XCHECK_PASS:.0%}, "
                             f"WARN <= {XCHECK_WARN:.0%}; batch 1 is reported, not judged)", *lines))


def nvml(done: Finished) -> Verdict:
    """`bench.gpucheck.nvml_probe`: FAIL without NVML, WARN where a counter the cells record is unsupported."""
    report = json.loads(done.stdout.strip().splitlines()[-1])
    lines = tuple(f"{key}: {value}" for key, value in report.items())
    if not report.get("nvml"):
        return Verdict("FAIL", lines)
    missing = [key for key in ("energy_mj", "clocks_event_reasons", "sm_clock_mhz", "power_mw")
               if report.get(key) in (None, "unsupported")]
    return Verdict("WARN" if missing else "PASS", (*(f"unsupported: {k}" for k in missing), *lines))
