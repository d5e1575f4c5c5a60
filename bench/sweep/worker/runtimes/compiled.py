"""`compile` and `compile_frozen`: the form under torch.compile (Inductor), gated on the compiled output.

`compile_frozen` turns on Inductor's freezing (`torch._inductor.config.freezing`, inference under
`torch.no_grad`): parameters become constants and a BatchNorm after a convolution is folded into it (the
"binary folding" pass), which is what a deployment compiled for inference gets. The flag must be set in
Inductor's global config while Dynamo traces: passed as `torch.compile(options={"freezing": True})` it
reaches Inductor but not Dynamo, the parameters stay graph inputs and nothing is folded (torch 2.13), a
fold that silently disappears. So the row records whether the fold happened, read from the graph Inductor
lowers (a census pass), not that the flag was set: `runtime_convs` convolutions and `runtime_batchnorms`
BatchNorms whose statistics are still read at run time (one `sqrt(var + eps)` each; freezing makes them
constants), with Inductor's `binary_folding` counter in `runtime_settings`. A graph served from Inductor's
FX-graph cache is not lowered again, so its census is None (not counted).

One compile per graph, not per batch size: inference forms are compiled once per (model, form, precision,
memory format, resolution) in a worker with the batch dimension marked dynamic (`torch._dynamo.mark_dynamic`;
batch 1 is specialised by Dynamo, so it gets a static compile of its own), and later units of the same
key reuse it; `runtime_settings` says `batch=dynamic` or `batch=static` and `shared=True` for a reuse, and
`compile_graphs` the graphs Dynamo compiled in this unit's first call (0 for a reuse that needed none: a
shared graph still recompiles where its guards say the new batch is outside the range it was compiled
for: on the CPU the convolution's layout choice bounds the batch, e.g. 2..15 for a 16x16 input).
`train_step` compiles per unit, statically.

Dynamo's state is reset (`bench.sweep.worker.dynamo_state.fresh_state`) whenever a worker starts a unit of
another compile group (`share_group`: the key without the form, so a pair's two forms are one group; every
train_step unit is a group of its own), and the shared graphs go with it: within a group the graphs
shared are the intended ones, and no group compiles on what another left (automatic dynamic shapes from
other sizes, a full cache). The sweep runs a group's units in a row (`bench.sweep.protocol.group_units`),
so a group is compiled once, not once per visit of the batch loop. Dynamo keeps the compiled code of every module instance of a class in one
cache per code object, 8 entries by default, after which it silently runs the frame in eager; the limit
is raised and hitting it made an error.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence

import torch
from torch import nn

from bench.sweep.worker import dynamo_state
from bench.sweep.worker.runtimes.base import Opened, Runtime, RuntimeRecord, cpu_output, register

if TYPE_CHECKING:
    from torch._inductor.custom_graph_pass import CustomGraphPass
    from bench.results.cell import Cell

RECOMPILE_LIMIT = 512
"""Dynamo's per-code-object cache size in a compile worker: above the variants one worker could compile
between two resets in the largest preset (2 forms x 4 precisions x 2 formats x (static batch 1 + dynamic)
+ 48 train steps)."""
MIN_DYNAMIC_BATCH = 2
"""Dynamo specialises sizes 0 and 1, so a batch dimension can be marked dynamic from 2 on."""


def _graph_census() -> Optional[type]:
    """A CustomGraphPass class that counts convolutions and run-time BatchNorm square roots in the graph
    Inductor lowers (as its first post-grad pass: after freezing, before Inductor's own fusions rename
    the convolutions); None where this torch has no custom graph passes."""
    try:
        from torch._inductor.custom_graph_pass import CustomGraphPass
    except ImportError:
        return None

    class Census(CustomGraphPass):
        def __init__(self) -> None:
            self.convs: Optional[int] = None
            self.batchnorms: Optional[int] = None

        def __call__(self, graph: torch.fx.Graph) -> None:
            ops = [getattr(n.target, "_opname", "") for n in graph.nodes if n.op == "call_function"]
            self.convs = (self.convs or 0) + sum("convolution" in op for op in ops)
            self.batchnorms = (self.batchnorms or 0) + sum(op in ("sqrt", "rsqrt") for op in ops)

        def uuid(self) -> str:  # the FX-graph cache keys on it: a constant keeps the cache usable
            return "bench-graph-census-1"

    return Census


@contextmanager
def _compiling(freezing: bool, census: Optional[CustomGraphPass]) -> Iterator[None]:
    """Inductor's global config while Dynamo traces and Inductor compiles (the first call)."""
    import torch._dynamo.config as dynamo_config
    import torch._inductor.config as inductor_config

    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, RECOMPILE_LIMIT)
    if hasattr(dynamo_config, "accumulated_recompile_limit"):
        dynamo_config.accumulated_recompile_limit = max(dynamo_config.accumulated_recompile_limit,
                                                        RECOMPILE_LIMIT)
    if hasattr(dynamo_config, "fail_on_recompile_limit_hit"):
        dynamo_config.fail_on_recompile_limit_hit = True
    patch = {"freezing": freezing}
    if census is not None:
        patch["post_grad_custom_pre_pass"] = census
    with inductor_config.patch(patch):
        yield


def _call(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, frozen: bool):
    """The inference call: `no_grad` for freezing (Inductor freezes only with grad off), else
    `inference_mode` as the eager runtime runs."""
    context = torch.no_grad if frozen else torch.inference_mode

    def call() -> torch.Tensor:
        with context():
            return model(x)

    return call


class _Compiled(Runtime):
    freezing = False
    summary = "torch.compile (Inductor, default mode)"
    backend = "inductor"

    def __init__(self) -> None:
        self.shared: dict[tuple, tuple[Callable[[torch.Tensor], torch.Tensor], nn.Module]] = {}
        """Compiled inference models of this worker's current compile group (with the module each wraps),
        keyed on what decides their graph."""
        self.group: Optional[frozenset] = None
        """The compile group of the worker's last unit (None: none yet, or a train step)."""

    def share_group(self, cell: Cell) -> Optional[tuple]:
        if cell.mode != "infer":
            return None
        batch = "dynamic" if cell.batch_size >= MIN_DYNAMIC_BATCH else f"static{cell.batch_size}"
        return (cell.model, cell.precision, cell.memory_format, cell.resolution, batch)

    def _key(self, cell: Cell) -> tuple:
        return (*self.share_group(cell), cell.form)

    def begin_unit(self, cells: Sequence[Cell]) -> None:
        """A fresh dynamo, and nothing shared, where the unit starts another compile group (module
        docstring)."""
        groups = frozenset(self.share_group(cell) for cell in cells)
        group = None if None in groups else groups
        if group is None or group != self.group:
            dynamo_state.fresh_state()
            self.shared.clear()
        self.group = group

    def open(self, module: nn.Module, x: torch.Tensor, cell: Cell, device: torch.device,
             share: bool = True, seed: int = 0) -> Opened:
        from bench.sweep.worker.extra_timings import time_first_call
        from bench.models.workload import train_step_fn

        infer = cell.mode == "infer"
        key = self._key(cell)
        reused = infer and share and key in self.shared
        dynamic = infer and cell.batch_size >= MIN_DYNAMIC_BATCH
        if reused:
            model, wrapped = self.shared[key]
            wrapped.to(device)  # a unit's memory pass parks the other form on the host (bench.sweep.worker.unit)
        else:
            model = torch.compile(module, backend=self.backend, dynamic=False if not dynamic else None)
            if dynamic:
                torch._dynamo.mark_dynamic(x, 0)
            if infer and share:
                self.shared[key] = (model, module)
        fn = _call(model, x, self.freezing) if infer else train_step_fn(module, model, x, cell, device)
        census_cls = _graph_census()
        census = census_cls() if census_cls is not None else None
        inductor = ("fxgraph_cache_miss", "fxgraph_cache_bypass", "binary_folding")
        misses, bypasses, folds = (dynamo_state.counter("inductor", n) for n in inductor)
        graphs = dynamo_state.graphs()
        with _compiling(self.freezing, census):
            first_ms = time_first_call(fn, device)
        missed, bypassed, folded = (dynamo_state.delta(before, dynamo_state.counter("inductor", n))
                                    for before, n in zip((misses, bypasses, folds), inductor))
        cold = None if missed is None else missed + bypassed > 0
        settings: list[tuple[str, Any]] = [("mode", "default"), ("freezing", self.freezing),
                                           ("batch", "dynamic" if dynamic else "static"), ("shared", reused)]
        if self.freezing and folded is not None:
            settings.append(("binary_folding", folded))
        record = RuntimeRecord(version=f"torch {torch.__version__}", settings=tuple(settings),
                               first_call_ms=first_ms, cache_cold=cold,
                               graphs=dynamo_state.delta(graphs, dynamo_state.graphs()),
                               convs=census.convs if census else None,
                               batchnorms=census.batchnorms if census else None)
        return Opened(call=fn, output=lambda: cpu_output(fn()) if infer else None, record=record, keep=(model, x))


@register
class Compile(_Compiled):
    name = "compile"
    modes = ("infer", "train_step")


@register
class CompileFrozen(_Compiled):
    name = "compile_frozen"
    summary = "torch.compile with Inductor freezing (inference under no_grad: conv+BN folded)"
    freezing = True
    why_modes = "freezing compiles inference only: parameters become constants"
