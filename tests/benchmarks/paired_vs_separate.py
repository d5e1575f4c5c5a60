"""A/A repeatability of the deploy/train speedup: paired blocks against two separate measurements.

    python3 tests/benchmarks/paired_vs_separate.py [--model repvgg_a0] [--rounds 4] [--timeout 3] [--out FILE]

Each round measures the same speedup twice: `measure_pair` (train and deploy interleaved, ABBA blocks)
and `measure_latency` of train then of deploy (as separate cells do), each given the same timed time per
form. The methods alternate their order between rounds. Reported: the speedups, their spread (sd of
log speedup across rounds), the paired intervals and how many of them hold every other round's paired
median. One torch thread, the CPU. Writes JSON (stdout, or --out).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from bench.measure.paired import measure_pair  # noqa: E402
from bench.measure.timing import TimingConfig, measure_latency  # noqa: E402


def forms(model_name: str, batch: int, resolution: int) -> dict:
    from bench.models import create, randomize_bn_
    from bench.reparam import to_deploy

    train = create(model_name, deploy=False)
    randomize_bn_(train, generator=torch.Generator().manual_seed(0))
    train.eval()
    deploy = to_deploy(train).eval()
    x = torch.randn(batch, 3, resolution, resolution)

    def call(model):
        def fn():
            with torch.inference_mode():
                return model(x)
        return fn

    return {"train": call(train), "deploy": call(deploy)}


def sd_log(values: list[float]) -> float:
    return statistics.stdev(math.log(v) for v in values) if len(values) > 1 else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="repvgg_a0")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=3.0, help="timed seconds per pair")
    parser.add_argument("--target", type=float, default=0.03, help="target_rel_ci")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    fns = forms(args.model, args.batch, args.resolution)
    pair_config = TimingConfig(min_time_s=0.3, target_rel_ci=args.target, timeout_s=args.timeout)
    single_config = TimingConfig(min_time_s=0.3, target_rel_ci=args.target, timeout_s=args.timeout / 2)
    paired, separate = [], []
    for i in range(args.rounds):
        for method in (("paired", "separate") if i % 2 == 0 else ("separate", "paired")):
            start = time.perf_counter()
            if method == "paired":
                pair = measure_pair(fns, "cpu", "cpu", pair_config)
                paired.append({"speedup": pair.speedup_median, "low": pair.speedup_ci_low,
                               "high": pair.speedup_ci_high, "stop_reason": pair.stop_reason,
                               "n_pairs": pair.n_pairs, "timed_s": pair.timed_s,
                               "wall_s": time.perf_counter() - start})
            else:
                train = measure_latency(fns["train"], "cpu", "cpu", single_config)
                deploy = measure_latency(fns["deploy"], "cpu", "cpu", single_config)
                separate.append({"speedup": train.median_ms / deploy.median_ms,
                                 "timed_s": train.timed_s + deploy.timed_s,
                                 "wall_s": time.perf_counter() - start})
    held = sum(all(p["low"] <= q["speedup"] <= p["high"] for q in paired if q is not p) for p in paired)
    result = {
        "model": args.model, "batch": args.batch, "resolution": args.resolution, "rounds": args.rounds,
        "timeout_s": args.timeout, "target_rel_ci": args.target,
        "paired": paired, "separate": separate,
        "paired_sd_log_speedup": sd_log([p["speedup"] for p in paired]),
        "separate_sd_log_speedup": sd_log([s["speedup"] for s in separate]),
        "paired_intervals_holding_every_other_median": f"{held}/{len(paired)}",
    }
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
