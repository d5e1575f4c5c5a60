"""First-use cost of counting MACs, in fresh processes: bench.measure.mac_counter vs FlopCounterMode.

    python3 tests/benchmarks/mac_counter_cost.py [--model repvgg_a0] [--resolution 64] [--repeats 3] [--out FILE]

Each repeat runs each counter in its own fresh interpreter (after `import torch` and building the
model, the state a sweep cell is in) and records the wall time and RSS growth of the first count and
the time of a second one. Counters alternate between repeats, so drift of the machine hits both.
Writes JSON (stdout, or --out).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys, time
import torch
from bench.models import create

def rss_mib():
    return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20

which, model_name, resolution = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(1)
model = create(model_name, deploy=False).eval()
x = torch.zeros(1, 3, resolution, resolution)

def count():
    if which == "light":
        from bench.measure.mac_counter import MacCounter
        counter = MacCounter()
        with counter, torch.no_grad():
            model(x)
        return counter.flops // 2
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() // 2

rss0, t0 = rss_mib(), time.perf_counter()
macs = count()
t1, rss1 = time.perf_counter(), rss_mib()
count()
t2 = time.perf_counter()
print(json.dumps({"macs": macs, "first_s": t1 - t0, "second_s": t2 - t1, "rss_growth_mib": rss1 - rss0,
                  "dynamo_imported": "torch._dynamo" in sys.modules}))
"""


def run_child(which: str, model: str, resolution: int) -> dict:
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", CHILD, which, model, str(resolution)], cwd=root,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="repvgg_a0")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    runs: dict[str, list[dict]] = {"light": [], "flop_counter_mode": []}
    for i in range(args.repeats):
        order = ("light", "flop_counter_mode") if i % 2 == 0 else ("flop_counter_mode", "light")
        for which in order:
            runs[which].append(run_child(which, args.model, args.resolution))
    summary = {
        which: {
            "first_s_median": statistics.median(r["first_s"] for r in rs),
            "second_s_median": statistics.median(r["second_s"] for r in rs),
            "rss_growth_mib_median": statistics.median(r["rss_growth_mib"] for r in rs),
            "dynamo_imported": any(r["dynamo_imported"] for r in rs),
            "macs": rs[0]["macs"],
        } for which, rs in runs.items()
    }
    light, reference = summary["light"], summary["flop_counter_mode"]
    result = {"model": args.model, "resolution": args.resolution, "repeats": args.repeats,
              "summary": summary, "runs": runs, "same_macs": light["macs"] == reference["macs"],
              "first_use_ratio": reference["first_s_median"] / light["first_s_median"]}
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0 if result["same_macs"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
