"""How far a deploy form may be from its training form: the one error measure and tolerance table, used by
the sweep's gate, `bench verify`, export checks and the tests.

Error: max_abs = max |y_deploy - y_train| and max_rel = max_abs / max |y_train|, in float64 so the
comparison adds no rounding. The relative error is normalised by the output's scale, not element by
element: elementwise ratios blow up where an output is near zero (every ReLU output that is exactly 0).
A non-finite output has max_rel = inf. A deploy form passes when max_rel <= TOLERANCES[gate_precision(precision)].

The values of the sweep's precisions are their records' `tolerance` in `bench.results.precision` (the one
precision table); `TOLERANCES` reads them and adds fp64 (`bench verify`'s float64 rows, not a sweep
precision). Why these tolerances (relative to the largest output):
- fp32 1e-4: folding reorders sums (three branch kernels added before the conv instead of three convs
  added after), so exact equality is impossible; fp32 rounding (unit roundoff 6e-8) accumulated over
  ~25 layers of 3x3 convs with random BN statistics gives errors around 1e-6..1e-5 of the output scale.
  1e-4 leaves a 10x margin and still catches any real algebra error (those are O(1e-2) or larger).
- tf32 1e-2: convolutions read 10-bit mantissas (unit roundoff 4.9e-4); the two forms round different
  kernels, so per-layer differences of ~1e-3 compound through the network.
- fp16 / bf16 5e-2: fp16 has the same 10-bit mantissa as tf32 but also stores every activation and the
  folded weights in it; bf16 has 7 bits (unit roundoff 3.9e-3). Errors of 1e-2 of the output scale are
  normal for a 20-layer network, while a wrong fold (a branch dropped, BN misapplied) is O(1e-1..1).
- fp64 1e-10: the same reordering at unit roundoff 1.1e-16.
- int8: no tolerance, on purpose (its record's `gated_in`, collected in `GATED_IN`). The gate stays exact:
  an int8 cell's forms are exported and checked in fp32 (1e-4 above) before either is quantized, and its
  rows carry that fp32 verdict. What int8 then changes is quantization error, which every correct int8
  graph has (about 6 dB of SQNR per bit); it is measured and written as columns (`bench.quant.error`),
  never used to withhold a speedup.

`PARITY_FP64` is the bar of the third-party parity audit (`bench verify --models 'timm:*'`): a whole
network in float64 from one exact conversion; timm's and this package's deploy forms agree with their
training forms to about 1e-15 (2.4e-15 worst, RepVGG-A0 at 64x64), so 1e-12 keeps a 400x margin while any
wrong fold (an activation dropped, a padding lost: 1e-1 and more) fails. Some training forms are so
ill-conditioned with random weights and BN statistics that their own output moves more than that when
only the order of their sums changes (timm's repvgg_d2se: 1.2e-6 between contiguous and channels_last, in
float64): for those the bar is `PARITY_FLOOR_FACTOR` times that reordering error, which a fold's own
reordering stays within while a wrong fold still does not.

`BLOCK_TOLERANCES` are for one block alone (`bench verify`'s block rows): a single block's reordered sum
has no depth to compound over; every block agrees to at most 1.4e-6 in fp32 and 1.7e-15 in fp64 (random
BN statistics, 16 -> 32 channels), so 1e-5 and 1e-12 keep a 7x and 600x margin and catch a wrong fold
that a whole network's looser tolerance could hide in one layer.
"""

from __future__ import annotations

import torch

from bench.results.precision import PRECISIONS

TOLERANCES: dict[str, float] = {**{p.name: p.tolerance for p in PRECISIONS if p.tolerance is not None},
                                "fp64": 1e-10}
GATED_IN: dict[str, str] = {p.name: p.gated_in for p in PRECISIONS if p.gated_in is not None}
"""Precisions without a tolerance of their own -> the precision their gate runs in (see above)."""
BLOCK_TOLERANCES: dict[str, float] = {"fp32": 1e-5, "fp64": 1e-12}
PARITY_FP64: float = 1e-12
PARITY_FLOOR_FACTOR: float = 10.0
PRECISION_OF_DTYPE: dict[torch.dtype, str] = {
    **{getattr(torch, p.dtype): p.name for p in PRECISIONS if p.torch_runs and not p.tf32},
    torch.float64: "fp64"}
"""A tensor dtype -> the precision that computes in it plainly (float32 -> fp32, not tf32)."""


def output_error(reference: torch.Tensor, other: torch.Tensor) -> tuple[float, float]:
    """(max_abs, max_rel) of `other` against `reference`, as defined above."""
    a, b = reference.detach().double(), other.detach().double()
    diff = float((b - a).abs().max())
    scale = float(a.abs().max())
    rel = diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))
    if not torch.isfinite(a).all() or not torch.isfinite(b).all():
        rel = float("inf")
    return diff, rel


def gate_precision(precision: str) -> str:
    """The precision a cell of `precision` is gated in: itself, or its `GATED_IN` entry (int8 -> fp32)."""
    gated = GATED_IN.get(precision, precision)
    if gated not in TOLERANCES:
        raise ValueError(f"precision '{precision}' has no gate tolerance; known: "
                         f"{', '.join([*TOLERANCES, *GATED_IN])}")
    return gated


def gate_tolerance(precision: str) -> float:
    """The gate's tolerance for a cell of `precision` (int8: the fp32 tolerance its fp32 graphs pass)."""
    return TOLERANCES[gate_precision(precision)]


def tolerance_for(dtype: torch.dtype, table: dict[str, float] = TOLERANCES) -> float:
    """The tolerance of a tensor dtype in `table` (TOLERANCES, or BLOCK_TOLERANCES for one block); a clear
    error for a dtype without an entry."""
    precision = PRECISION_OF_DTYPE.get(dtype)
    if precision not in table:
        known = [str(d) for d, p in PRECISION_OF_DTYPE.items() if p in table]
        raise ValueError(f"no tolerance for dtype {dtype}; known: {', '.join(known)}")
    return table[precision]
