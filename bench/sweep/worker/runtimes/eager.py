"""`eager` and `cudagraph`: the prepared PyTorch module itself is timed (`bench.models.workload.make_fn`),
and the gate compares the two PyTorch forms. `cudagraph` replays the eager call captured in a CUDA graph
(`bench.measure.cuda_regimes`): a regime, not a new graph."""

from __future__ import annotations

from bench.sweep.worker.runtimes.base import Runtime, register


@register
class Eager(Runtime):
    name = "eager"
    summary = "the PyTorch module as it is"
    opens = False
    modes = ("infer", "train_step")


@register
class CudaGraph(Runtime):
    name = "cudagraph"
    summary = "the eager call captured once in a CUDA graph and replayed"
    opens = False
    devices = ("cuda",)
    regimes = {"cuda": "cudagraph"}
    why_modes = "optimizer state capture not supported"
