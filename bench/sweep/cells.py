"""Cells: one point of the axes' cartesian product, with an NVBench-style skip reason.

A skip rule is a function (cell, device_type) -> reason or None, registered with `@skip_rule`; the first
rule that gives a reason wins; a rule that one condition says is a line of `PLAIN_SKIPS` instead. Skipped
cells are still written as rows (status 'skipped', the reason in `error`) so a results table shows what
was not measured and why, instead of silently missing it.

Cells are ordered so that the train and deploy forms of one configuration run back to back: the pair that
a speedup is computed from is measured minutes apart at most, under the same thermal and clock state.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import asdict, field, make_dataclass
from typing import Callable, Optional

from bench.results.schema import AXES, AXIS_SPECS
from bench.sweep.config import SweepConfig

ORDER: tuple[str, ...] = tuple(a.name for a in sorted(AXIS_SPECS, key=lambda a: a.loop))
"""Loop nesting of the expansion, outermost first (`Axis.loop`; form innermost: pairs are adjacent)."""


class _CellMethods:
    """What a cell does beyond holding its axes; `Cell` below adds one field per axis."""

    def key(self) -> tuple:
        """Values of AXES in schema order: the key `RunWriter.finished_keys()` holds."""
        return tuple(getattr(self, axis) for axis in AXES)

    def axes(self) -> dict:
        return {axis: getattr(self, axis) for axis in AXES}

    def to_dict(self) -> dict:
        return asdict(self)

    def label(self) -> str:
        return (f"{self.model} {self.form} {self.mode} b{self.batch_size} {self.precision} "
                f"{self.memory_format} {self.runtime} r{self.resolution}")


Cell = make_dataclass(
    "Cell", [*((a.name, a.type) for a in AXIS_SPECS), ("skip_reason", Optional[str], field(default=None))],
    bases=(_CellMethods,), frozen=True)
Cell.__module__ = __name__  # so pickle (Ray, worker pools) finds it here
Cell.__doc__ = """One point of the axes' product: a field per `AXIS_SPECS` entry (model, form, mode, batch_size,
precision, memory_format, runtime, resolution), in schema order, plus the reason it is skipped, if any."""


SkipRule = Callable[[Cell, str], Optional[str]]
SKIP_RULES: list[SkipRule] = []


def skip_rule(fn: SkipRule) -> SkipRule:
    SKIP_RULES.append(fn)
    return fn


CPU_PRECISIONS: tuple[str, ...] = ("fp32", "int8")
"""What a CPU sweep times: fp32, and int8 where a runtime quantizes (the other precisions are CUDA math)."""
INT8_RUNTIMES: tuple[str, ...] = ("onnxruntime",)
"""Runtimes that quantize an exported graph to int8 (`bench.quant`); torch runtimes run floats only."""

PLAIN_SKIPS: tuple[tuple[Callable[[Cell, str], bool], str], ...] = (
    (lambda cell, device: cell.form == "deploy" and cell.mode == "train_step",
     "train_step needs the training form; the deploy form is for inference only"),
    (lambda cell, device: device == "cpu" and cell.precision not in CPU_PRECISIONS,
     "{precision} not timed on CPU (the CPU sweep measures fp32, and int8 where a runtime quantizes)"),
    (lambda cell, device: cell.precision == "int8" and cell.runtime not in INT8_RUNTIMES,
     "int8 needs a runtime that quantizes the exported graph ({runtime} runs float torch modules); "
     "valid runtime for int8: " + ", ".join(INT8_RUNTIMES)),
    (lambda cell, device: device == "cpu" and cell.runtime == "cudagraph",
     "cudagraph not timed on CPU (CUDA graphs need a GPU)"),
    (lambda cell, device: cell.runtime == "cudagraph" and cell.mode == "train_step",
     "cudagraph runtime is measured for inference only (optimizer state capture not supported)"),
)
"""(applies to (cell, device type), reason with the cell's axes filled in): the rules one condition says."""


@skip_rule
def _plain_skips(cell: Cell, device_type: str) -> Optional[str]:
    return next((reason.format(**cell.axes()) for applies, reason in PLAIN_SKIPS if applies(cell, device_type)),
                None)


ORT_PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "fp16", "int8")
"""What an onnxruntime cell can run in: bf16 has no numpy dtype for ONNX Runtime's inputs (and tf32 / fp16
are CUDA settings; the CPU rule above already skips them there). int8: the fp32 export quantized by
`bench.quant.onnx_static`, on the CPU provider only (`ORT_INT8_DEVICES`)."""
ORT_INT8_DEVICES: tuple[str, ...] = ("cpu",)
"""Where ONNX Runtime runs a QDQ graph with int8 kernels: its CPU provider. The CUDA provider runs QDQ
graphs by dequantizing around float convolutions, so a row there would time no int8 math; int8 on CUDA
needs TensorRT (its runtime or ONNX Runtime's TensorRT provider), which this harness does not drive yet."""


@skip_rule
def _onnxruntime_combinations(cell: Cell, device_type: str) -> Optional[str]:
    """Settings an exported graph cannot take: rows with a reason, as for cudagraph x train_step, so a
    cartesian sweep over several runtimes still runs the combinations that exist."""
    if cell.runtime != "onnxruntime":
        return None
    if cell.mode != "infer":
        return "onnxruntime runtime is measured for inference only (an exported graph has no backward); valid mode: infer"
    if cell.memory_format != "contiguous":
        return ("onnxruntime runtime runs the exported NCHW graph (ONNX Runtime picks its own layouts); "
                "valid memory_format: contiguous")
    if cell.precision not in ORT_PRECISIONS:
        return f"onnxruntime runtime is not timed in {cell.precision}; valid precision: {', '.join(ORT_PRECISIONS)}"
    if cell.precision == "int8" and device_type not in ORT_INT8_DEVICES:
        return (f"int8 through onnxruntime is timed on {', '.join(ORT_INT8_DEVICES)} only: its {device_type} "
                "provider has no int8 convolutions for QDQ graphs (int8 on CUDA needs TensorRT, not a runtime "
                "of this harness yet)")
    return _onnxruntime_unavailable(device_type)


@functools.lru_cache(maxsize=None)
def _onnxruntime_unavailable(device_type: str) -> Optional[str]:
    """The extra or the device's execution provider missing (asked once per device type)."""
    from bench.export.ort_runtime import skip_reason as ort_skip_reason

    return ort_skip_reason(device_type)


def skip_reason(cell: Cell, device_type: str) -> Optional[str]:
    for rule in SKIP_RULES:
        reason = rule(cell, device_type)
        if reason:
            return reason
    return None


def expand(config: SweepConfig, device_type: str) -> list[Cell]:
    """The cartesian product of the config's axes, in ORDER, each with its skip reason (or None)."""
    cells = []
    for values in itertools.product(*(config.values(axis) for axis in ORDER)):
        cell = Cell(**dict(zip(ORDER, values)))
        reason = skip_reason(cell, device_type)
        cells.append(Cell(**{**cell.to_dict(), "skip_reason": reason}) if reason else cell)
    return cells
