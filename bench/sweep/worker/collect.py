"""Measurement objects -> `Result` fields (names of bench.results.schema.Result), in one place.

A unit keeps what it measured of each cell as the measurement objects themselves, in a `CellRecord`;
`CellRecord.fields(cell)` turns them into columns once, at the end (or at a failure, with what was measured
before it). Attributes are read without defaults, so a renamed attribute fails loudly instead of emptying
a column. Only renaming and the few per-cell derived quantities that need the cell's batch and mode:
- throughput_samples_s = `bench.results.derived.throughput(batch, latency_ms_median)`.
- tflops_achieved = bench.measure.flops.tflops_achieved(MACs_per_sample * batch * k, median_ms), i.e.
  2 * MACs per call / seconds / 1e12, with k = 1 for inference and k = 3 for a training step (backward
  costs about twice the forward: Kaplan et al. 2020, sec. 2.1).
- pct_of_peak = 100 * tflops_achieved / the device's dense peak for the precision (None if unknown).
- energy_j_per_sample = energy_j / (n * calls_per_sample * batch) (`bench.measure.nvml.energy_per_sample_j`),
  energy_j being NVML energy counter deltas. A pair's form: the sum of the deltas read right before and
  after each of its own timed blocks (`bench.measure.paired.measure_pair(block_energy=...)`); the two forms
  share one telemetry window, whose mean power times each form's latency would make their energy ratio
  equal their latency ratio by construction. A lone cell: the delta over its telemetry window, entered
  once around the timed phase (its blocks and the stop-rule checks between them; not the first call or
  the warm-up). Either way the delta holds all the device did meanwhile, the L2 flush before each call
  included when `flush_l2` is on. Without the counter the column is empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

import torch

from bench.results.derived import throughput

if TYPE_CHECKING:
    from bench.measure.memory import MemoryStats
    from bench.measure.nvml import Telemetry
    from bench.measure.stats import LatencyStats
    from bench.models.gate import GateResult
    from bench.results.cell import Cell
    from bench.sweep.worker.int8 import Int8Record
    from bench.sweep.worker.runtimes.base import RuntimeRecord

TIMING_FIELDS: dict[str, str] = {
    "latency_ms_median": "median_ms", "latency_ms_median_ci_low": "median_ci_low_ms",
    "latency_ms_median_ci_high": "median_ci_high_ms", "latency_ms_mean": "mean_ms", "latency_ms_min": "min_ms",
    "latency_ms_p5": "p5_ms", "latency_ms_p90": "p90_ms", "latency_ms_p95": "p95_ms",
    "latency_ms_p99": "p99_ms", "latency_ms_iqr": "iqr_ms", "latency_cv": "cv", "noisy": "noisy", "n_samples": "n",
    "stop_reason": "stop_reason", "warmup_iters": "warmup_iters", "first_call_ms": "first_call_ms",
    "host_enqueue_ms_median": "host_enqueue_ms_median", "timing_regime": "regime",
}
MEMORY_FIELDS: tuple[str, ...] = (
    "peak_allocated_mib", "peak_reserved_mib", "nvml_process_mib", "nvml_device_delta_mib",
    "cuda_context_mib", "peak_rss_mib",
)
TELEMETRY_FIELDS: tuple[str, ...] = (
    "power_w_mean", "sm_clock_mhz_mean", "mem_clock_mhz_mean", "temperature_c_max", "throttled",
    "sm_clock_mhz_max", "sm_clock_ratio", "sm_clock_mhz_reference", "throttle_rule",
)
TRAIN_STEP_FLOP_FACTOR = 3


def _plain(value: Any) -> Any:
    """Tuples/lists of reasons -> one comma-separated string; numpy scalars -> Python numbers."""
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(str(v) for v in value) if value else None
    if hasattr(value, "item"):
        return value.item()
    return value


def timing_fields(stats: LatencyStats, batch_size: int) -> dict[str, Any]:
    out = {col: _plain(getattr(stats, attr)) for col, attr in TIMING_FIELDS.items()}
    median = out["latency_ms_median"]
    out["throughput_samples_s"] = throughput(batch_size, median)
    return out


def host_bound(regime: str, host_enqueue_ms: Optional[float], median_ms: Optional[float]) -> Optional[bool]:
    """`bench.measure.cuda_regimes.host_bound` (enqueue >= 0.9 x latency), for the pipelined regime only
    (elsewhere the latency is not a max of host and GPU time: None)."""
    from bench.measure.cuda_regimes import host_bound as pipelined_host_bound

    return pipelined_host_bound(host_enqueue_ms, median_ms) if regime == "pipelined" else None


def memory_fields(stats: MemoryStats) -> dict[str, Any]:
    return {col: _plain(getattr(stats, col)) for col in MEMORY_FIELDS}


def telemetry_fields(telemetry: Telemetry) -> dict[str, Any]:
    out = {col: _plain(getattr(telemetry, col)) for col in TELEMETRY_FIELDS}
    reasons = telemetry.throttle_reasons
    out["throttle_reasons"] = _plain(reasons) if reasons else None
    fractions = telemetry.reason_fractions
    out["throttle_reason_fractions"] = (", ".join(f"{name}:{share:.2f}" for name, share in fractions)
                                        if fractions else None)
    return out


def energy_fields(energy_j: Optional[float], stats: LatencyStats, batch_size: int) -> dict[str, Any]:
    from bench.measure.nvml import energy_per_sample_j

    return {"energy_j_per_sample": energy_per_sample_j(energy_j, stats.n * stats.calls_per_sample, batch_size)}


def compute_fields(macs_per_sample: Optional[int], median_ms: Optional[float], batch_size: int,
                   mode: str, peak_tflops: Optional[float]) -> dict[str, Any]:
    if not macs_per_sample or not median_ms:
        return {"tflops_achieved": None, "pct_of_peak": None}
    from bench.measure.flops import tflops_achieved

    k = TRAIN_STEP_FLOP_FACTOR if mode == "train_step" else 1
    tflops = tflops_achieved(macs_per_sample * batch_size * k, median_ms)
    pct = 100.0 * tflops / peak_tflops if peak_tflops else None
    return {"tflops_achieved": tflops, "pct_of_peak": pct}


def model_fields(params: int, macs_per_sample: Optional[int]) -> dict[str, Any]:
    return {"params_m": params / 1e6, "gmacs": macs_per_sample / 1e9 if macs_per_sample else None}


def env_fields(seed: int, flags: dict[str, Any]) -> dict[str, Any]:
    """Versions and reproducibility switches as the cell's process saw them."""
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    out = {
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "cudnn_version": str(cudnn) if cudnn is not None else None,
        "num_threads": torch.get_num_threads(),
        "seed": seed,
    }
    for key in ("tf32_matmul", "tf32_cudnn", "float32_matmul_precision", "fp32_precision_matmul",
                "fp32_precision_cudnn_conv", "cudnn_benchmark", "deterministic"):
        out[key] = _plain(flags.get(key))
    return out


@dataclass
class CellRecord:
    """What a unit measured of one cell so far, as typed measurement objects (None: not measured yet)."""

    env: dict[str, Any] = field(default_factory=dict)
    """`env_fields` of the unit's process (versions and reproducibility switches), already columns."""
    gate: Optional[GateResult] = None
    runtime: Optional[RuntimeRecord] = None
    """Runtimes that open a form: what decides their numbers, their build and first call."""
    params: Optional[int] = None
    macs: Optional[int] = None
    compile_recompiles: Optional[int] = None
    """torch.compile runtimes: frames dynamo compiled during the timed phase (a pair's: both forms'); 0 =
    every timed call ran what the first call compiled (`bench.sweep.worker.dynamo_state`)."""
    stats: Optional[LatencyStats] = None
    host_enqueue_ms: Optional[float] = None
    """From a short synchronized pass, where the timing regime could not see the host's enqueue time."""
    host_bound_ruled_out: bool = False
    """The pass was skipped: the pipelined median is too long for the host to have set it
    (`bench.measure.cuda_regimes.host_bound_possible`), so `host_bound` is False with no enqueue time."""
    flush_l2: Optional[bool] = None
    telemetry: Optional[Telemetry] = None
    energy_j: Optional[float] = None
    """The energy counter's delta over this cell's own timed calls (a pair: its own blocks), J."""
    peak_tflops: Optional[float] = None
    memory: Optional[MemoryStats] = None
    int8: Optional[Int8Record] = None
    """int8 cells: the quantization, its error and the int8-vs-fp32 speedup of this form."""

    def fields(self, cell: Cell) -> dict[str, Any]:
        """The row's measured columns."""
        out = dict(self.env)
        if self.gate is not None:
            out.update(self.gate.row_fields())
        if self.runtime is not None:
            out.update(self.runtime.fields())
        if self.int8 is not None:
            out.update(self.int8.fields())
        if self.params is not None:
            out.update(model_fields(self.params, self.macs))
        if self.compile_recompiles is not None:
            out["compile_recompiles"] = self.compile_recompiles
        if self.stats is not None:
            out.update(self._timed(cell, self.stats))
        if self.runtime is not None and self.runtime.first_call_ms is not None:
            out["first_call_ms"] = self.runtime.first_call_ms  # the runtime's own first call wins
        if self.memory is not None:
            out.update(memory_fields(self.memory))
        return out

    def _timed(self, cell: Cell, stats: LatencyStats) -> dict[str, Any]:
        out = timing_fields(stats, cell.batch_size)
        if out["host_enqueue_ms_median"] is None:
            out["host_enqueue_ms_median"] = self.host_enqueue_ms
        out["host_bound"] = host_bound(stats.regime, out["host_enqueue_ms_median"], stats.median_ms)
        if out["host_bound"] is None and self.host_bound_ruled_out:
            out["host_bound"] = False
        out["flush_l2"] = self.flush_l2
        if self.telemetry is not None:
            out.update(telemetry_fields(self.telemetry))
            out.update(energy_fields(self.energy_j, stats, cell.batch_size))
        out.update(compute_fields(self.macs, stats.median_ms, cell.batch_size, cell.mode, self.peak_tflops))
        return out
