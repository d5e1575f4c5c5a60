"""`python -m bench.gpucheck.xcheck`: the harness's `pipelined` and `cudagraph` timers against
`triton.testing.do_bench` and `do_bench_cudagraph` on the same callable (RepVGG-A0, both forms, batch 1
and 128, fp32, 224x224). One JSON line per case; `verdicts.xcheck` judges them.

triton's timers report the median with return_mode="median". do_bench clears L2 before each call, so at
batch 1 (weights L2-resident) it can be slower than the harness's L2-warm timers; at batch 128 the
activations exceed L2 and the two must agree. do_bench_cudagraph must run off the default stream.

The timers alternate, harness, triton, harness, triton, and each record holds both runs of each: a card
at its power cap drifts in clock by a few percent over seconds, and the two timers taken at different
moments could differ by that alone. `closest_gap` compares the pair of neighbouring runs that agree best
(`verdicts.xcheck`): drift moves both sides of a neighbouring pair alike.
"""

from __future__ import annotations

import json

import torch


ALTERNATIONS = 2
"""Harness, triton, harness, triton: two runs of each timer, alternating."""
CASES: tuple[tuple[str, int], ...] = (("train", 1), ("train", 128), ("deploy", 1), ("deploy", 128))
"""(form, batch) of RepVGG-A0 at 224x224, fp32."""
HARNESS_TIMING: dict[str, float] = {"min_time_s": 0.3, "timeout_s": 3.0}
DO_BENCH_MS = 25 + 100
"""triton.testing.do_bench's default warm-up and repetition times (ms); do_bench_cudagraph's are shorter."""
RUN_KEYS: tuple[str, ...] = ("pipelined_ms", "cudagraph_ms", "do_bench_ms", "do_bench_cudagraph_ms")


def closest_gap(ours: list[float], theirs: list[float]) -> float:
    """ours / theirs - 1 for the neighbouring pair of runs (in the order ours[0], theirs[0], ours[1], ...)
    that agree best: each of ours with the triton run right after it and right before it."""
    pairs = [(o, t) for i, o in enumerate(ours) for t in theirs[max(i - 1, 0):i + 1]]
    return min((o / t - 1 for o, t in pairs), key=abs)


def runs_of(fn, config) -> dict[str, list[float]]:  # noqa: ANN001 - a zero-argument CUDA callable
    """Each timer ALTERNATIONS times, the harness's two and triton's two taking turns."""
    import triton.testing

    from bench.measure import timing

    runs: dict[str, list[float]] = {key: [] for key in RUN_KEYS}
    for _ in range(ALTERNATIONS):
        for regime in ("pipelined", "cudagraph"):
            runs[f"{regime}_ms"].append(timing.measure_latency(fn, "cuda", regime, config).median_ms)
        runs["do_bench_ms"].append(float(triton.testing.do_bench(fn, return_mode="median")))
        with torch.cuda.stream(torch.cuda.Stream()):
            runs["do_bench_cudagraph_ms"].append(float(triton.testing.do_bench_cudagraph(fn, return_mode="median")))
    return runs


def main() -> None:
    from bench.measure import precision_switches, timing
    from bench.models import create
    from bench.reparam import to_deploy

    precision_switches.apply_precision_settings("fp32")
    config = timing.TimingConfig(**HARNESS_TIMING)
    for form, batch in CASES:
        net = create("repvgg_a0").eval()
        net = (to_deploy(net) if form == "deploy" else net).to("cuda")
        x = torch.randn(batch, 3, 224, 224, device="cuda")

        def fn(net: torch.nn.Module = net, x: torch.Tensor = x) -> torch.Tensor:
            with torch.inference_mode():
                return net(x)

        print(json.dumps({"form": form, "batch": batch, **runs_of(fn, config)}), flush=True)


if __name__ == "__main__":
    main()
