"""What a runtime is to the sweep: a name, what it can run, why it cannot run here, and how it opens a form.

A runtime is one `Runtime` subclass in a module of its own, registered with `@register` in
`bench.sweep.worker.runtimes`. Two kinds:
- `opens = False` (eager, cudagraph): the prepared PyTorch module is the thing timed; the gate compares
  the two PyTorch forms (`bench.models.gate.run_gate`) and `bench.models.workload.make_fn` builds the call.
- `opens = True` (everything else): `open(module, x, cell, device)` turns one prepared form into an
  `Opened`: the timed zero-arg callable bound to the timing input `x`, a way to read its output, and a
  `RuntimeRecord` of what decides its numbers. The unit gates every opened form's output against the
  PyTorch training form's on the first samples of `x`, before anything is timed, so what is timed is
  exactly what was checked.

`unavailable(device_type)` names what is missing (a package, a provider, a GPU) and is asked when the sweep
is planned, so a cell that cannot run is a skipped row with that reason, never a failure mid-sweep.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Optional, Sequence

import torch
from torch import nn

from bench.results.precision import TORCH_PRECISIONS
from bench.results.schema import AXIS_SPECS

if TYPE_CHECKING:
    import numpy as np
    from bench.quant.evaluate import Int8Form
    from bench.results.cell import Cell

ALL_FORMATS: tuple[str, ...] = next(a.choices for a in AXIS_SPECS if a.name == "memory_format")


@dataclass(frozen=True)
class RuntimeRecord:
    """What a row records of the runtime that ran it (the `runtime_*` columns, plus the first call)."""

    version: str
    """The package that decides the numbers, with its version ("onnxruntime 1.32.0")."""
    settings: tuple[tuple[str, Any], ...] = ()
    """The settings that decide its numbers, as the runtime reported them back where it can."""
    build_ms: Optional[float] = None
    """Export, conversion and session or engine build, before the first call."""
    first_call_ms: Optional[float] = None
    """The first call (for torch.compile: tracing and compilation), timed apart from the measurement."""
    cache_cold: Optional[bool] = None
    """torch.compile only: the first call compiled (Inductor's FX-graph cache missed or was bypassed)."""
    graphs: Optional[int] = None
    """torch.compile only: the graphs Dynamo made in the first call (0: a graph shared within the compile
    group served it; 1: the forward in one graph; more: graph breaks or a shared graph recompiled)."""
    convs: Optional[int] = None
    batchnorms: Optional[int] = None
    columns: tuple[tuple[str, Any], ...] = ()
    """Columns of the runtime's own (onnxruntime: its `ort_*` columns)."""

    def settings_text(self) -> Optional[str]:
        return ", ".join(f"{k}={v}" for k, v in self.settings) or None

    def fields(self) -> dict[str, Any]:
        return {"runtime_version": self.version, "runtime_settings": self.settings_text(),
                "runtime_build_ms": self.build_ms, "runtime_convs": self.convs,
                "runtime_batchnorms": self.batchnorms, "compile_cache_cold": self.cache_cold,
                "compile_graphs": self.graphs, **dict(self.columns)}


@dataclass
class Opened:
    """One form opened under a runtime: `call()` is what gets timed; `output()` runs the graph the gate
    checks once and returns its output as a CPU float tensor; `keep` holds what must outlive the calls
    (the bound input, sessions, engines)."""

    call: Callable[[], object]
    output: Callable[[], torch.Tensor]
    record: RuntimeRecord
    keep: tuple[Any, ...] = field(default=())
    int8: Optional[Int8Form] = None
    """int8 only: the form's fp32 and int8 graphs (`bench.quant.evaluate.Int8Form`), whose int8 error and
    speed against fp32 the unit measures (`bench.sweep.worker.int8`); `call` runs the int8 graph and `output`
    the fp32 one, since int8 is gated in fp32 (`bench.models.agreement.GATED_IN`)."""


class Runtime:
    """A runtime's declaration. Subclasses set the class attributes and override what differs.

    `modes`, `precisions`, `memory_formats`, `devices`: what it can run; a cell outside them is skipped
    with a reason naming the valid values. `harness_casts`: fp16/bf16 inference casts the module and
    input before `open` (False where the runtime takes the precision as a build flag, e.g. TensorRT,
    and gets the fp32 module). `torch_memory`: torch's allocator counters see what it allocates (False
    for sessions with arenas of their own: their memory is read from NVML only). `regimes`: the timing
    regime per device type (`bench.measure.timing`).
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    opens: ClassVar[bool] = True
    modes: ClassVar[tuple[str, ...]] = ("infer",)
    precisions: ClassVar[tuple[str, ...]] = TORCH_PRECISIONS
    """Default: every precision torch computes in. int8 is a runtime's own quantization of the exported
    graph (`bench.quant`), declared by the runtimes that do it (`bench.results.precision.QUANTIZED`)."""
    memory_formats: ClassVar[tuple[str, ...]] = ALL_FORMATS
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    harness_casts: ClassVar[bool] = True
    torch_memory: ClassVar[bool] = True
    regimes: ClassVar[dict[str, str]] = {"cpu": "cpu", "cuda": "pipelined"}
    why_modes: ClassVar[str] = "an exported or frozen graph has no backward"
    why_formats: ClassVar[str] = ""
    why_precisions: ClassVar[str] = ""
    why_no_int8: ClassVar[str] = "runs float torch modules"
    """Why a runtime without int8 in `precisions` does not quantize (the int8 skip reason says it)."""

    def unavailable(self, device_type: str) -> Optional[str]:
        """Why this runtime cannot run on `device_type` on this machine (package, provider), or None.
        Whether the device itself is there is the planner's check (`bench.sweep.driver.runner.plan`), not this."""
        return None

    def regime(self, device: torch.device) -> str:
        return self.regimes[device.type]

    def open(self, module: nn.Module, x: torch.Tensor, cell: Cell, device: torch.device,
             share: bool = True, seed: int = 0) -> Opened:
        """`module` prepared for `cell` (device, dtype, format) opened on the timing input `x`. `share`:
        the runtime may reuse what it built for an earlier unit of this worker with the same graph
        (False where the unit injects a fault into its module). `seed`: the unit's, for what a runtime
        draws (int8's calibration set)."""
        raise NotImplementedError(f"runtime '{self.name}' times the module itself; nothing to open")

    def share_group(self, cell: Cell) -> Optional[tuple]:
        """The cells whose units may share what this runtime builds (torch.compile's dynamic-batch graph),
        or None where it builds nothing shared; a worker runs a group's units in a row
        (`bench.sweep.protocol.group_units`)."""
        return None

    def begin_unit(self, cells: Sequence[Cell]) -> None:
        """Called as a worker starts a unit of `cells`, before any form is opened."""

    def combination_problem(self, cell: Cell, device_type: str) -> Optional[str]:
        """Why `cell`'s settings cannot run under this runtime at all (rules as data), or None."""
        if device_type not in self.devices:
            return (f"{self.name} runtime not timed on {device_type.upper()} "
                    f"(it runs on {' or '.join(d.upper() for d in self.devices)} only)")
        if cell.mode not in self.modes:
            why = f" ({self.why_modes})" if self.why_modes else ""
            return f"{self.name} runtime is measured for {', '.join(self.modes)} only{why}; valid mode: {', '.join(self.modes)}"
        if cell.memory_format not in self.memory_formats:
            why = f" ({self.why_formats})" if self.why_formats else ""
            return (f"{self.name} runtime does not take memory_format {cell.memory_format}{why}; "
                    f"valid memory_format: {', '.join(self.memory_formats)}")
        if cell.precision == "int8" and "int8" not in self.precisions:
            return (f"int8 needs a runtime that quantizes the exported graph ({self.name} {self.why_no_int8}); "
                    f"valid runtime for int8: {', '.join(int8_runtimes())}")
        if cell.precision not in self.precisions:
            why = f" ({self.why_precisions})" if self.why_precisions else ""
            return (f"{self.name} runtime is not timed in {cell.precision}{why}; "
                    f"valid precision: {', '.join(self.precisions)}")
        return None


def module_spec_missing(*modules: str) -> list[str]:
    """The top-level modules among `modules` that are not installed (nothing is imported)."""
    import importlib.util

    return [m for m in modules if importlib.util.find_spec(m) is None]


@functools.lru_cache(maxsize=None)
def cuda_missing() -> Optional[str]:
    """Why torch cannot reach a CUDA GPU here, or None."""
    if not torch.cuda.is_available():
        return f"no CUDA GPU visible to torch {torch.__version__} (torch.cuda.is_available() is False)"
    return None


def cpu_output(out: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A runtime's output (tensor or numpy array) as a CPU float tensor, for the gate."""
    tensor = out if isinstance(out, torch.Tensor) else torch.from_numpy(out)
    return tensor.detach().float().cpu()


RUNTIMES: dict[str, Runtime] = {}
"""name -> the registered runtime (one instance per process: a runtime may keep what a worker reuses)."""


def int8_runtimes() -> list[str]:
    """The registered runtimes that quantize to int8 (declare it in `precisions`)."""
    return [name for name, runtime in RUNTIMES.items() if "int8" in runtime.precisions]


def register(cls: type[Runtime]) -> type[Runtime]:
    """Class decorator: one registration line per runtime."""
    if cls.name in RUNTIMES:
        raise ValueError(f"runtime '{cls.name}' is already registered")
    RUNTIMES[cls.name] = cls()
    return cls
