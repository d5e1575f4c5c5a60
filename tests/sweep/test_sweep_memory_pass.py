"""A unit's memory pass measures what the cell held while it was timed: a cudagraph cell's graph holds as
many calls as the timed graph (`graph_calls`), not one."""

from __future__ import annotations

import torch
from torch import nn

from bench.measure import memory
from bench.measure.memory import MemoryBaseline
from bench.measure.timing import TimingConfig
from bench.results.cell import Cell
from bench.sweep.protocol import UnitSpec
from bench.sweep.worker.unit import ModelCache, _Unit


def test_the_memory_pass_captures_the_timed_graphs_calls(monkeypatch):
    seen = []
    real = memory.measure_memory

    def spy(fn, device, baseline=None, calls=2, regime="eager", graph_calls=1):
        seen.append((regime, graph_calls))
        return real(fn, device, baseline, calls=calls, regime=regime, graph_calls=graph_calls)

    monkeypatch.setattr(memory, "measure_memory", spy)
    cell = Cell(model="repvgg_a0", form="deploy", mode="infer", batch_size=1, precision="fp32",
                memory_format="contiguous", runtime="cudagraph", resolution=32)
    unit = _Unit(UnitSpec(cells=(cell,), device="cpu", timing=TimingConfig(graph_calls=10)), ModelCache(seed=0))
    net = nn.Identity()
    unit.memory([lambda: net(torch.ones(1))], [net], MemoryBaseline(device="cpu"))
    assert seen == [("cudagraph", 10)]
    assert unit.records[0].memory.peak_rss_mib > 0
