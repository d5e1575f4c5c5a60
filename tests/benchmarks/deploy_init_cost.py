"""Time `to_deploy` with and without the throw-away initialisation of each new deploy conv.

Both ways run in this one process, interleaved (with, without, with, ...), on the same training-form
model, so machine drift lands on both alike. Writes a JSON summary:

    PYTHONPATH=. python3 tests/benchmarks/deploy_init_cost.py --model repvgg_b3 --repeats 3 --out deploy_init.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import contextmanager

import torch

import bench.reparam.fold as fold
from bench.models import create
from bench.reparam import to_deploy


@contextmanager
def initialising_deploy_convs():
    """The previous behaviour: each deploy conv is built (and so kaiming-initialised) before the copy."""
    original = fold.skip_init
    fold.skip_init = lambda cls, *args, **kwargs: cls(*args, **kwargs)
    try:
        yield
    finally:
        fold.skip_init = original


def _seconds(model: torch.nn.Module) -> float:
    start = time.perf_counter()
    to_deploy(model)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="repvgg_b3")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="deploy_init.json")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    model = create(args.model).eval()
    times: dict[str, list[float]] = {"initialised": [], "skip_init": []}
    for _ in range(args.repeats):
        with initialising_deploy_convs():
            times["initialised"].append(_seconds(model))
        times["skip_init"].append(_seconds(model))
    medians = {key: statistics.median(values) for key, values in times.items()}
    result = {
        "model": args.model, "repeats": args.repeats, "threads": torch.get_num_threads(),
        "seconds": times, "median_s": medians,
        "speedup": medians["initialised"] / medians["skip_init"],
    }
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=2)
    print(json.dumps(result["median_s"]), f"speedup {result['speedup']:.2f}x")


if __name__ == "__main__":
    main()
