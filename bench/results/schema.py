"""The result row: one frozen dataclass whose field names are the dataframe's columns.

Units live in the names (`_ms`, `_mib` = 2**20 bytes, `_w`, `_j`, `_mhz`). Add a column by adding a field
with a default; bump `SCHEMA_VERSION` when a field is renamed or removed (readers refuse other versions).
A field left `None` means "not measured here" (for example NVML columns on a CPU), never zero.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

from bench.results.precision import NAMES as PRECISION_NAMES

SCHEMA_VERSION = 1

@dataclass(frozen=True)
class Axis:
    """One axis of a sweep, declared once (as NVBench declares its axes): the sweep's validation, the
    config's defaults, the cells' loop order and the CLI's flags are all read from `AXIS_SPECS`.

    `choices`: the closed set of values (None: open; `model` is checked against the registry, int axes
    must be positive). `default`: the values a config that leaves the axis out gets (None: required).
    `loop`: nesting of the cells' expansion, 0 outermost (form innermost: train/deploy pairs adjacent).
    """

    name: str
    type: type
    choices: Optional[tuple[str, ...]]
    default: Optional[tuple]
    flags: tuple[str, ...]
    loop: int


AXIS_SPECS: tuple[Axis, ...] = (
    Axis("model", str, None, None, ("--models", "--model"), 0),
    Axis("form", str, ("train", "deploy"), ("train", "deploy"), ("--forms", "--form"), 7),
    Axis("mode", str, ("infer", "train_step"), ("infer",), ("--modes", "--mode"), 6),
    Axis("batch_size", int, None, (1,), ("--batch", "--batch-size"), 2),
    Axis("precision", str, PRECISION_NAMES, ("fp32",), ("--precision", "--precisions"), 3),
    Axis("memory_format", str, ("contiguous", "channels_last"), ("contiguous",),
         ("--memory-format", "--memory-formats"), 4),
    Axis("runtime", str, ("eager", "cudagraph", "compile", "compile_frozen", "onnxruntime", "onnxruntime_trt",
                          "openvino", "tensorrt"), ("eager",), ("--runtime", "--runtimes"), 5),
    Axis("resolution", int, None, (224,), ("--resolution", "--resolutions"), 1),
)
"""Every axis, in schema order. `train_step` = forward + backward + SGD step (training forms only).
Runtimes are registered in `bench.sweep.worker.runtimes` (one module each: what it can run, why it cannot run
here, how it opens a form); `bench run --runtime list` says which can run on this machine.
`int8`: the exported fp32 graph quantized by a runtime that quantizes (`bench.quant`; onnxruntime today),
gated in fp32 first; other runtimes skip it with a reason."""

AXES: tuple[str, ...] = tuple(a.name for a in AXIS_SPECS)
"""The columns that identify a cell: two rows with equal axes measure the same thing."""
CHOICES: dict[str, tuple[str, ...]] = {a.name: a.choices for a in AXIS_SPECS if a.choices is not None}
"""The closed value set of each axis that has one (`model` and the integer axes are open)."""

STATUSES: tuple[str, ...] = ("ok", "mismatch", "oom", "error", "timeout", "skipped")
"""`ok`: measured and, for deploy forms, passed the correctness gate. `mismatch`: measured but the deploy
output differs from the training form beyond tolerance, so no speedup may be reported from it."""


class _Row:
    """What every kind of row shares: a status from STATUSES, checked when it is made, and its columns as
    a dict."""

    status: str

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status '{self.status}' is unknown; known: {', '.join(STATUSES)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Result(_Row):
    """One cell of a sweep: its axes, how it ended, and everything measured about it."""

    # identity
    run_id: str
    hardware: str
    device: str
    model: str
    form: str
    mode: str
    batch_size: int
    precision: str
    memory_format: str
    runtime: str
    resolution: int
    status: str
    schema_version: int = SCHEMA_VERSION
    git_sha: Optional[str] = None
    error: Optional[str] = None
    skip_reason: Optional[str] = None
    started_at: Optional[str] = None
    duration_s: Optional[float] = None
    # timing (per call of the whole batch)
    timing_regime: Optional[str] = None
    latency_ms_median: Optional[float] = None
    latency_ms_median_ci_low: Optional[float] = None
    latency_ms_median_ci_high: Optional[float] = None
    latency_ms_mean: Optional[float] = None
    latency_ms_min: Optional[float] = None
    latency_ms_p5: Optional[float] = None
    latency_ms_p90: Optional[float] = None
    latency_ms_p95: Optional[float] = None
    latency_ms_p99: Optional[float] = None
    latency_ms_iqr: Optional[float] = None
    latency_cv: Optional[float] = None
    noisy: Optional[bool] = None  # the measurement's own judgement (LatencyStats.noisy)
    n_samples: Optional[int] = None
    stop_reason: Optional[str] = None
    warmup_iters: Optional[int] = None
    first_call_ms: Optional[float] = None
    host_enqueue_ms_median: Optional[float] = None
    host_bound: Optional[bool] = None
    compile_cache_cold: Optional[bool] = None
    # runtime `compile`: graphs dynamo made for the cell (1: one graph), frames it compiled during timing
    # (0: the timed calls ran what the first call compiled); every compile unit starts from a fresh dynamo
    compile_graphs: Optional[int] = None
    compile_recompiles: Optional[int] = None
    throughput_samples_s: Optional[float] = None
    # memory
    peak_allocated_mib: Optional[float] = None
    peak_reserved_mib: Optional[float] = None
    nvml_process_mib: Optional[float] = None
    nvml_device_delta_mib: Optional[float] = None
    cuda_context_mib: Optional[float] = None
    peak_rss_mib: Optional[float] = None
    # model and compute
    params_m: Optional[float] = None
    gmacs: Optional[float] = None
    tflops_achieved: Optional[float] = None
    pct_of_peak: Optional[float] = None
    # telemetry (NVML)
    power_w_mean: Optional[float] = None
    energy_j_per_sample: Optional[float] = None
    sm_clock_mhz_mean: Optional[float] = None
    mem_clock_mhz_mean: Optional[float] = None
    temperature_c_max: Optional[float] = None
    throttled: Optional[bool] = None
    throttle_reasons: Optional[str] = None
    throttle_reason_fractions: Optional[str] = None
    sm_clock_mhz_max: Optional[float] = None
    sm_clock_ratio: Optional[float] = None
    # the clock `throttled` was judged against and the rule's name (bench.measure.nvml.THROTTLE_RULES);
    # None in rows judged by the older rule, which also counted the SW power cap
    sm_clock_mhz_reference: Optional[float] = None
    throttle_rule: Optional[str] = None
    # machine load as the cell ended (recorded by the sweep's parent): 1-minute load average, and the
    # share of the last 10 s in which a runnable task waited for a CPU (/proc/pressure/cpu, Linux PSI)
    load_avg_1m: Optional[float] = None
    cpu_pressure_avg10: Optional[float] = None
    # correctness gate (deploy vs train form on the same input)
    max_abs_err: Optional[float] = None
    max_rel_err: Optional[float] = None
    tolerance: Optional[float] = None
    batchnorms_train: Optional[int] = None
    batchnorms_deploy: Optional[int] = None
    multibranch_train: Optional[int] = None
    multibranch_deploy: Optional[int] = None
    # how the deploy form was made (`bench.reparam.Conversion.recipe`): the conventions and folds that ran,
    # with counts, e.g. "fuse x1" or "reparameterize x36, conv->bn x54"
    deploy_recipe: Optional[str] = None
    # the pair this row was timed in (copied from its speedups.parquet row; None: timed alone)
    speedup_median: Optional[float] = None
    speedup_ci_low: Optional[float] = None
    speedup_ci_high: Optional[float] = None
    # environment and reproducibility
    torch_version: Optional[str] = None
    cuda_version: Optional[str] = None
    cudnn_version: Optional[str] = None
    num_threads: Optional[int] = None
    tf32_matmul: Optional[bool] = None
    tf32_cudnn: Optional[bool] = None
    float32_matmul_precision: Optional[str] = None
    fp32_precision_matmul: Optional[str] = None
    fp32_precision_cudnn_conv: Optional[str] = None
    flush_l2: Optional[bool] = None
    cudnn_benchmark: Optional[bool] = None
    deterministic: Optional[bool] = None
    seed: Optional[int] = None
    # where the model's code came from: "registry" for registered names, the library for `timm:` /
    # `torchvision:` names, the file (or module) of an own `FILE.py:factory` / `pkg.mod:factory` model
    model_source: Optional[str] = None
    model_source_sha256: Optional[str] = None
    # runtime `onnxruntime` only: the session that ran the exported graph (None for torch runtimes)
    ort_provider: Optional[str] = None
    ort_version: Optional[str] = None
    ort_graph_optimization_level: Optional[str] = None
    ort_intra_op_threads: Optional[int] = None
    # every runtime but eager/cudagraph: what decides its numbers (`bench.sweep.worker.runtimes.base.RuntimeRecord`)
    runtime_version: Optional[str] = None  # e.g. "openvino 2026.4.1", "torch 2.13.0"
    runtime_settings: Optional[str] = None  # "key=value, ..." as the runtime reported them back
    runtime_build_ms: Optional[float] = None  # export + conversion + session/engine build, before any call
    runtime_convs: Optional[int] = None  # convolutions in the graph the runtime executes
    runtime_batchnorms: Optional[int] = None  # BatchNorms it still computes from their statistics
    # precision int8 only (`bench.quant`, `bench.sweep.worker.int8`): how the form's exported fp32 graph was
    # quantized; its error against its own fp32 graph (`_vs_fp32`) and against the PyTorch training form in
    # fp32 (`_vs_train_fp32`), on `quant_eval_samples` inputs the calibration never saw: max relative error,
    # SQNR in dB, top-1 agreement (a measurement, not a gate: the gate columns above are the fp32 gate's;
    # `quant_eval_top1_classes`: how many distinct classes the fp32 reference picks over those inputs, 1
    # meaning agreement only tells whether that class survived); and fp32 / int8 latency of this form
    # timed side by side (> 1: int8 is faster)
    quant_scheme: Optional[str] = None
    quant_calibration: Optional[str] = None
    quant_calibration_samples: Optional[int] = None
    quant_calibration_seed: Optional[int] = None
    quant_eval_samples: Optional[int] = None
    quant_eval_top1_classes: Optional[int] = None
    int8_rel_err_vs_fp32: Optional[float] = None
    int8_sqnr_db_vs_fp32: Optional[float] = None
    int8_top1_agreement_vs_fp32: Optional[float] = None
    int8_rel_err_vs_train_fp32: Optional[float] = None
    int8_sqnr_db_vs_train_fp32: Optional[float] = None
    int8_top1_agreement_vs_train_fp32: Optional[float] = None
    fp32_latency_ms_median: Optional[float] = None
    int8_speedup_vs_fp32_median: Optional[float] = None
    int8_speedup_vs_fp32_ci_low: Optional[float] = None
    int8_speedup_vs_fp32_ci_high: Optional[float] = None

    def cell_key(self) -> tuple:
        return tuple(getattr(self, axis) for axis in AXES)


COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Result))
REQUIRED: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(Result)
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
)

SAMPLE_COLUMNS: tuple[str, ...] = ("run_id", *AXES, "sample_index", "latency_ms")
"""`samples.parquet`: every raw timing sample of every cell, keyed by the cell's axes."""

PAIR_AXES: tuple[str, ...] = tuple(a for a in AXES if a != "form")
"""The axes of a train/deploy pair: every axis but `form`."""


@dataclass(frozen=True)
class Speedup(_Row):
    """One train/deploy pair timed side by side in one process: a row of `speedups.parquet`/`.csv`.

    speedup_median = the median, over the pair's block pairs, of (median train latency of the block /
    median deploy latency of its neighbour block) (> 1: the deploy form is faster); for a steady machine
    it equals the ratio of the two rows' medians, under drift it is the one of the two that pairing
    protects. speedup_ci_low/high: its 95% interval from the same block ratios
    (`bench.measure.stats.speedup_interval`). The speedup
    columns are None unless `status` is 'ok', which needs both form rows ok and the correctness gate
    passed: a mismatched deploy form never yields a speedup. `paired` is False for speedups derived from
    the summary of an older run whose forms were timed in separate processes (no interval).
    """

    run_id: str
    hardware: str
    device: str
    model: str
    mode: str
    batch_size: int
    precision: str
    memory_format: str
    runtime: str
    resolution: int
    status: str
    schema_version: int = SCHEMA_VERSION
    error: Optional[str] = None
    paired: bool = True
    speedup_median: Optional[float] = None
    speedup_ci_low: Optional[float] = None
    speedup_ci_high: Optional[float] = None
    n_blocks: Optional[int] = None
    stop_reason: Optional[str] = None
    latency_ms_median_train: Optional[float] = None
    latency_ms_median_deploy: Optional[float] = None
    max_rel_err: Optional[float] = None
    tolerance: Optional[float] = None
    started_at: Optional[str] = None
    duration_s: Optional[float] = None
    timed_s: Optional[float] = None
    git_sha: Optional[str] = None
    # precision int8 only: each form's int8 error against the PyTorch training form in fp32 and its
    # fp32 / int8 speedup, copied from the form rows (`INT8_PAIR_COLUMNS`)
    int8_rel_err_train: Optional[float] = None
    int8_rel_err_deploy: Optional[float] = None
    int8_sqnr_db_train: Optional[float] = None
    int8_sqnr_db_deploy: Optional[float] = None
    int8_top1_agreement_train: Optional[float] = None
    int8_top1_agreement_deploy: Optional[float] = None
    int8_speedup_vs_fp32_train: Optional[float] = None
    int8_speedup_vs_fp32_deploy: Optional[float] = None

    def pair_key(self) -> tuple:
        return tuple(getattr(self, axis) for axis in PAIR_AXES)


SPEEDUP_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Speedup))

INT8_PAIR_COLUMNS: dict[str, str] = {
    "int8_rel_err": "int8_rel_err_vs_train_fp32", "int8_sqnr_db": "int8_sqnr_db_vs_train_fp32",
    "int8_top1_agreement": "int8_top1_agreement_vs_train_fp32", "int8_speedup_vs_fp32": "int8_speedup_vs_fp32_median",
}
"""A pair row's `<key>_<form>` column -> the form row's column it copies."""
