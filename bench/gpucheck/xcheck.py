"""`python -m bench.gpucheck.xcheck`: the harness's `pipelined` and `cudagraph` timers against
`triton.testing.do_bench` and `do_bench_cudagraph` on the same callable (RepVGG-A0, both forms, batch 1
and 128, fp32, 224x224). One JSON line per case; `verdicts.xcheck` judges them.

triton's timers report the median with return_mode="median". do_bench clears L2 before each call, so at
batch 1 (weights L2-resident) it can be slower than the harness's L2-warm timers; at batch 128 the
activations exceed L2 and the two must agree. do_bench_cudagraph must run off the default stream.
"""

from __future__ import annotations

import json

import torch


def main() -> None:
    import triton.testing

    from bench.measure import repro, timing
    from bench.models import create
    from bench.reparam import to_deploy

    repro.apply_precision_settings("fp32")
    config = timing.TimingConfig(min_time_s=0.3, timeout_s=3.0)
    for form in ("train", "deploy"):
        for batch in (1, 128):
            net = create("repvgg_a0").eval()
            net = (to_deploy(net) if form == "deploy" else net).to("cuda")
            x = torch.randn(batch, 3, 224, 224, device="cuda")

            def fn(net: torch.nn.Module = net, x: torch.Tensor = x) -> torch.Tensor:
                with torch.inference_mode():
                    return net(x)

            ours = {regime: timing.measure_latency(fn, "cuda", regime, config).median_ms
                    for regime in ("pipelined", "cudagraph")}
            do_bench = triton.testing.do_bench(fn, return_mode="median")
            with torch.cuda.stream(torch.cuda.Stream()):
                do_bench_graph = triton.testing.do_bench_cudagraph(fn, return_mode="median")
            print(json.dumps({"form": form, "batch": batch, "pipelined_ms": ours["pipelined"],
                              "cudagraph_ms": ours["cudagraph"], "do_bench_ms": float(do_bench),
                              "do_bench_cudagraph_ms": float(do_bench_graph)}), flush=True)


if __name__ == "__main__":
    main()
