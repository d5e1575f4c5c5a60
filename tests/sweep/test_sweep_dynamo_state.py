"""torch.compile units start from a fresh dynamo state, and record what dynamo did (graphs, recompiles).
Dynamo's own tracing (backend "eager") stands in for the inductor here: the state and the counters are
dynamo's either way, and tracing a two-layer net costs a second, not an inductor compile."""

from __future__ import annotations

import torch
from torch import nn
from torch._dynamo.eval_frame import _debug_get_cache_entry_list as cache_entries

from bench.sweep.worker import dynamo_state
from bench.results.cell import Cell
from bench.sweep.protocol import UnitSpec
from bench.sweep.worker.unit import ModelCache, _Unit


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


def _compile_cell(batch: int) -> Cell:
    return Cell(model="repvgg_a0", form="train", mode="infer", batch_size=batch, precision="fp32",
                memory_format="contiguous", runtime="compile", resolution=32)


def test_a_compile_unit_does_not_start_on_what_an_earlier_unit_compiled():
    """An earlier unit's compile of the same forward (a worker serves every unit of its model) is gone
    when the next compile unit sets up; without that, its compile would be a recompile (dynamic shapes
    at another batch size, eager code past the recompile limit)."""
    net = Tiny().eval()
    with torch.inference_mode():
        torch.compile(net, backend="eager")(torch.randn(1, 3, 8, 8))
    assert len(cache_entries(Tiny.forward)) == 1
    unit = _Unit(UnitSpec(cells=(_compile_cell(2),), device="cpu", seed=0), ModelCache(seed=0))
    unit.setup()
    assert len(cache_entries(Tiny.forward)) == 0


def test_an_eager_unit_leaves_dynamo_alone():
    net = Tiny().eval()
    with torch.inference_mode():
        torch.compile(net, backend="eager")(torch.randn(1, 3, 8, 8))
    eager = Cell(**{**_compile_cell(2).axes(), "runtime": "eager"})
    _Unit(UnitSpec(cells=(eager,), device="cpu", seed=0), ModelCache(seed=0)).setup()
    assert len(cache_entries(Tiny.forward)) == 1


def test_graphs_of_a_compile_and_frames_recompiled_afterwards_are_counted():
    dynamo_state.fresh_state()
    compiled = torch.compile(Tiny().eval(), backend="eager")
    graphs = dynamo_state.graphs()
    with torch.inference_mode():
        compiled(torch.randn(1, 3, 8, 8))
    assert dynamo_state.delta(graphs, dynamo_state.graphs()) == 1
    frames = dynamo_state.frames()
    with torch.inference_mode():
        compiled(torch.randn(1, 3, 8, 8))  # what the first call compiled
    assert dynamo_state.delta(frames, dynamo_state.frames()) == 0
    with torch.inference_mode():
        compiled(torch.randn(3, 3, 8, 8))  # a guard fails: a recompile
    assert dynamo_state.delta(frames, dynamo_state.frames()) == 1
    assert dynamo_state.delta(None, 3) is None
