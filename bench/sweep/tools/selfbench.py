"""How fast and how repeatable the sweep itself is: `python -m bench.sweep.tools.selfbench --out FILE.json`.

Runs one preset (default `smoke`) twice in a row, each as `python -m bench run` in a fresh temporary
folder, exactly as a user would, and writes one JSON document:

- per run: end-to-end wall time of the command, the time inside timed windows (sum of the pairs'
  `timed_s` from `speedups.parquet`: time inside timed blocks) and its fraction of the wall time;
- A/A between the two runs, per pair: the ratio of the two speedups, whether it lies within
  `AA_TOLERANCE` (10%), and whether each run's 95% interval holds the other run's median;
- the criteria of the sweep's speed goal (`TARGETS`) and whether each was met;
- the load average before and after, the core count, torch's version and the git SHA: a number taken
  on a loaded machine says so.

Exit status: 0 when both sweeps ran (whatever the criteria say; read `met`), 1 when a sweep failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from bench.results.layout import SPEEDUPS_FILE
from bench.results.schema import PAIR_AXES

AA_TOLERANCE = 0.10
TARGETS: dict[str, float] = {"wall_s_max": 35.0, "timed_fraction_min": 0.60, "aa_within_tolerance_min": 1.0,
                             "aa_interval_holds_other_min": 0.90}
"""Issue targets for `smoke` on 2 cores: wall time, timed fraction, every speedup within 10% between the
runs, each run's interval holding the other's median for at least 90% of pairs."""


def _run_once(preset: str, out: Path, label: str, extra: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench", "run", "--preset", preset, "--out", str(out), "--run-id", label, *extra]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    run_dir = next(out.glob(f"*/{label}"))
    speedups = pd.read_parquet(run_dir / SPEEDUPS_FILE)
    timed = float(pd.to_numeric(speedups["timed_s"]).sum())
    return {"run_dir": str(run_dir.relative_to(out)), "wall_s": wall, "timed_s": timed, "timed_fraction": timed / wall,
            "pairs": int(len(speedups)), "pair_status": speedups["status"].value_counts().to_dict(),
            "speedups": speedups}


def aa(first: pd.DataFrame, second: pd.DataFrame) -> dict[str, Any]:
    """Per-pair A/A agreement of two runs' speedups (ok pairs of both runs)."""
    keys = list(PAIR_AXES)
    cols = [*keys, "speedup_median", "speedup_ci_low", "speedup_ci_high"]
    a = first[first["status"].eq("ok")][cols]
    b = second[second["status"].eq("ok")][cols]
    both = a.merge(b, on=keys, suffixes=("_1", "_2"))
    ratio = both["speedup_median_2"] / both["speedup_median_1"]
    within = (ratio - 1).abs() <= AA_TOLERANCE
    holds_2 = both["speedup_ci_low_1"].le(both["speedup_median_2"]) & both["speedup_ci_high_1"].ge(both["speedup_median_2"])
    holds_1 = both["speedup_ci_low_2"].le(both["speedup_median_1"]) & both["speedup_ci_high_2"].ge(both["speedup_median_1"])
    pairs = [{**{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}}
             for row in both.assign(ratio=ratio, within=within, run1_ci_holds_run2=holds_2,
                                    run2_ci_holds_run1=holds_1).to_dict("records")]
    n = max(len(both), 1)
    return {"pairs_compared": int(len(both)), "max_abs_change": float((ratio - 1).abs().max()) if len(both) else None,
            "within_tolerance_fraction": float(within.sum() / n),
            "interval_holds_other_fraction": float(min(holds_1.sum(), holds_2.sum()) / n), "per_pair": pairs}


def _git_sha() -> Optional[str]:
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def selfbench(preset: str = "smoke", runs: int = 2, extra: Optional[list[str]] = None) -> dict[str, Any]:
    import torch

    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-selfbench-") as tmp:
        for i in range(runs):
            results.append(_run_once(preset, Path(tmp), f"selfbench-{i + 1}", list(extra or [])))
    agreement = aa(results[0]["speedups"], results[1]["speedups"]) if runs >= 2 else {}
    for r in results:
        r["speedups"] = r["speedups"][[*PAIR_AXES, "status", "speedup_median", "speedup_ci_low", "speedup_ci_high",
                                       "n_blocks", "stop_reason", "timed_s", "duration_s"]].to_dict("records")
    met = {"wall_s_max": all(r["wall_s"] <= TARGETS["wall_s_max"] for r in results),
           "timed_fraction_min": all(r["timed_fraction"] >= TARGETS["timed_fraction_min"] for r in results)}
    if agreement:
        met["aa_within_tolerance_min"] = agreement["within_tolerance_fraction"] >= TARGETS["aa_within_tolerance_min"]
        met["aa_interval_holds_other_min"] = (agreement["interval_holds_other_fraction"]
                                              >= TARGETS["aa_interval_holds_other_min"])
    return {"preset": preset, "command": f"python -m bench run --preset {preset} {' '.join(extra or [])}".strip(),
            "runs": results, "aa": agreement, "targets": TARGETS, "met": met,
            "load_average_before": load_before, "load_average_after": os.getloadavg(),
            "cpu_count": os.cpu_count(), "torch_version": torch.__version__, "git_sha": _git_sha(),
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep.tools.selfbench", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--isolation", choices=("model", "cell"), default="model")
    args = parser.parse_args(argv)
    try:
        doc = selfbench(args.preset, args.runs, ["--isolation", args.isolation])
    except RuntimeError as exc:
        print(f"selfbench: {exc}", file=sys.stderr)
        return 1
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2, default=str) + "\n")
    for i, r in enumerate(doc["runs"], 1):
        print(f"run {i}: {r['wall_s']:.1f} s wall, {r['timed_s']:.1f} s timed ({r['timed_fraction']:.0%})")
    if doc["aa"]:
        print(f"A/A: max change {doc['aa']['max_abs_change']:.1%}, within 10%: "
              f"{doc['aa']['within_tolerance_fraction']:.0%}, interval holds the other run's median: "
              f"{doc['aa']['interval_holds_other_fraction']:.0%}")
    print(f"load average before {doc['load_average_before']}, after {doc['load_average_after']}; met: {doc['met']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
