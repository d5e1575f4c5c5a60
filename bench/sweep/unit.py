"""One unit of work inside a worker: a lone cell, or the train/deploy pair of one setting.

Steps: seed, threads and precision switches -> memory baseline -> the model's training form (random BN
statistics, built once per worker) and its deploy form (converted once per worker), copied and prepared
(device, dtype, memory format) for this unit -> the correctness gate FIRST (deploy vs training form on
the same input, cuDNN autotuning off so the gate's batch costs no extra autotune; under every runtime
but eager and cudagraph each form is opened on the timing input first (`Runtime.open`: compiled,
exported, converted, built) and every opened form's output is gated against the PyTorch training form,
so what is timed is what was checked) -> MACs (once per model, form and resolution, on the
CPU copy) -> timing: a pair in alternating blocks inside one NVML window that covers only the timed
phase, a lone cell alone -> a memory pass per form -> rows.

Any exception becomes the outcome of the cell being worked on ('oom' or 'error', see `failures.classify`);
the other cell of a pair gets the same status, its error naming the form that failed.
"""

from __future__ import annotations

import copy
import gc
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Optional

import torch

from bench.models.gate import GATE_MAX_BATCH, compare_outputs, run_gate
from bench.sweep import collect, faults, workload
from bench.sweep.extra_timings import host_enqueue_ms, peak_tflops
from bench.sweep.failures import classify, describe
from bench.sweep.pairing import Timed, time_alone, time_pair, timing_config
from bench.sweep.protocol import CellOutcome, UnitOutcome, UnitSpec


@dataclass
class ModelCache:
    """What a worker keeps between units: each model's training form (eval mode, random BN statistics from
    the sweep's seed), its deploy form (`to_deploy`, once) and MACs per (model, form, resolution), all on
    the CPU in fp32. Units prepare copies, so nothing a unit does (casts, formats, faults) leaks."""

    seed: int
    forms: dict[tuple[str, str], torch.nn.Module] = field(default_factory=dict)
    macs: dict[tuple[str, str, int], Optional[int]] = field(default_factory=dict)
    folds: dict[str, Any] = field(default_factory=dict)

    def form(self, model: str, form: str) -> torch.nn.Module:
        key = (model, form)
        if key not in self.forms:
            from bench.models.build import deploy_form, training_form

            self.forms[key] = (training_form(model, self.seed) if form == "train"
                               else deploy_form(self.form(model, "train")))
        return self.forms[key]

    def fold_of(self, model: str) -> Any:
        """What `to_deploy` removed from this model (BatchNorms, multi-branch blocks): once per model."""
        if model not in self.folds:
            from bench.reparam import fold_report

            self.folds[model] = fold_report(self.form(model, "train"), self.form(model, "deploy"))
        return self.folds[model]

    def macs_of(self, model: str, form: str, resolution: int) -> Optional[int]:
        """MACs of one sample's forward: the same in every dtype and memory format, so counted once."""
        key = (model, form, resolution)
        if key not in self.macs:
            from bench.measure.flops import count_macs

            x1 = torch.randn(1, 3, resolution, resolution, generator=torch.Generator().manual_seed(self.seed))
            with torch.inference_mode():
                self.macs[key] = int(count_macs(self.form(model, form), x1))
        return self.macs[key]


@contextmanager
def no_autotune() -> Iterator[None]:
    """cudnn.benchmark off for a block: the gate's batch (and any other side shape) costs no autotune."""
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


class _Unit:
    """The state of one unit while it runs; `current` is the cell being worked on (for attribution)."""

    def __init__(self, spec: UnitSpec, cache: ModelCache) -> None:
        self.spec, self.cache = spec, cache
        self.cells = spec.cells
        self.records = [collect.CellRecord() for _ in self.cells]
        """What was measured of each cell; a deploy cell's (eager, cudagraph) or every cell's (runtimes
        that open a form) record holds its gate."""
        self.current = 0
        self.device = torch.device("cuda:0" if spec.device == "cuda" else "cpu")
        from bench.sweep import runtimes

        self.runtime = runtimes.get(self.cells[0].runtime)
        self.opened: list[Any] = []
        """Runtimes that open a form: one `Opened` per cell (holding what must stay alive)."""
        self.inputs: list[torch.Tensor] = []

    def faults(self, i: int) -> list[str]:
        return list(self.spec.faults[i]) if i < len(self.spec.faults) else []

    def setup(self) -> Any:
        from bench.measure.memory import take_baseline
        from bench.measure.repro import apply_precision_settings, reproducibility_flags

        torch.manual_seed(self.spec.seed)
        if self.spec.num_threads:
            torch.set_num_threads(self.spec.num_threads)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("the unit asks for CUDA but torch.cuda.is_available() is False")
        for i in range(len(self.cells)):
            self.current = i
            faults.trigger(self.faults(i), "start")
        apply_precision_settings(self.cells[0].precision)
        env = collect.env_fields(self.spec.seed, reproducibility_flags())
        for record in self.records:
            record.env = env
        return take_baseline(self.device)

    def _leaves_model_alone(self, i: int) -> bool:
        """True where nothing this unit does can change the cached module: eager inference on the CPU in
        fp32, contiguous, no injected fault (a copy of a large model costs a quarter of a second)."""
        cell = self.cells[i]
        return (self.device.type == "cpu" and cell.mode == "infer" and cell.runtime == "eager"
                and cell.precision == "fp32" and cell.memory_format == "contiguous" and not self.faults(i))

    def prepare(self) -> list[torch.nn.Module]:
        modules = []
        for i, cell in enumerate(self.cells):
            self.current = i
            cached = self.cache.form(cell.model, cell.form)
            module = cached if self._leaves_model_alone(i) else copy.deepcopy(cached)
            if cell.form == "deploy":
                faults.trigger(self.faults(i), "deploy", module)
            modules.append(workload.prepare_model(module, cell, self.device))
        return modules

    def _train_module(self, modules: list[torch.nn.Module], cell: Any) -> torch.nn.Module:
        """The unit's prepared training form, or a prepared copy of the cached one for a lone deploy cell."""
        forms = [c.form for c in self.cells]
        if "train" in forms:
            return modules[forms.index("train")]
        return workload.prepare_model(copy.deepcopy(self.cache.form(cell.model, "train")), cell, self.device)

    def run_gate(self, modules: list[torch.nn.Module]) -> None:
        """Deploy vs training form on GATE_MAX_BATCH samples, before anything is timed."""
        if self.runtime.opens:
            self.open_forms(modules)
            return
        forms = [c.form for c in self.cells]
        if "deploy" not in forms:
            return
        d = forms.index("deploy")
        self.current = d
        cell = self.cells[d]
        train = self._train_module(modules, cell)
        x = workload.make_input(cell, self.device, batch_size=min(cell.batch_size, GATE_MAX_BATCH),
                                seed=self.spec.seed + 1)
        with no_autotune():
            self.records[d].gate = replace(run_gate(train, modules[d], x, cell.precision),
                                           fold=self.cache.fold_of(cell.model))
        del train, x
        _free(self.device)

    def open_forms(self, modules: list[torch.nn.Module]) -> None:
        """Open each form under the runtime on the timing input, then gate every opened form's output
        (its first samples) against the PyTorch training form's (a train_step opening has no output)."""
        for i, (cell, module) in enumerate(zip(self.cells, modules)):
            self.current = i
            self.inputs.append(workload.make_input(cell, self.device, seed=self.spec.seed))
            self.opened.append(self.runtime.open(module, self.inputs[i], cell, self.device,
                                                 share=not self.faults(i)))
            self.records[i].runtime = self.opened[i].record
        cell = self.cells[0]
        if cell.mode != "infer":
            return
        n = min(cell.batch_size, GATE_MAX_BATCH)
        train = self._train_module(modules, cell)
        with no_autotune(), torch.inference_mode():
            reference = train(self.inputs[0][:n]).detach().float().cpu()
        for i, c in enumerate(self.cells):
            self.current = i
            result = replace(compare_outputs(reference, self.opened[i].output()[:n], c.precision),
                             compared=f"{self.runtime.name} output of the {c.form} form",
                             reference="the PyTorch training form")
            if c.form == "deploy":
                result = replace(result, fold=self.cache.fold_of(c.model))
            self.records[i].gate = result
        del train, reference
        _free(self.device)

    def make_fns(self, modules: list[torch.nn.Module]) -> list[Any]:
        fns = []
        for i, (cell, module) in enumerate(zip(self.cells, modules)):
            self.current = i
            record = self.records[i]
            record.macs = self.cache.macs_of(cell.model, cell.form, cell.resolution)
            record.params = sum(p.numel() for p in module.parameters())
            if self.runtime.opens:
                fn = self.opened[i].call
            else:
                x = workload.make_input(cell, self.device, seed=self.spec.seed)
                fn = workload.make_fn(module, x, cell, self.device)
            faults.trigger(self.faults(i), "workload", self.device)
            fns.append(fn)
        return fns

    def time(self, fns: list[Any]) -> Timed:
        from bench.measure.nvml import TelemetrySampler

        cell = self.cells[0]
        config, regime = timing_config(self.spec.timing), workload.regime_for(cell, self.device)
        samplers: list[Any] = []

        def window() -> Any:
            samplers.append(TelemetrySampler(self.device))
            return samplers[-1]

        start = time.perf_counter()
        if self.spec.is_pair:
            self.current = 0
            timed = time_pair({c.form: fn for c, fn in zip(self.cells, fns)}, self.device, regime, config,
                              window, self.spec.seed)
        else:
            timed = time_alone(cell.form, fns[0], self.device, regime, config, window)
        window_s = time.perf_counter() - start
        telemetry = samplers[-1].result if samplers else None
        window_s = (telemetry.duration_s if telemetry else None) or timed.pair.get("timed_s") or window_s
        for i, (c, fn) in enumerate(zip(self.cells, fns)):
            self.current = i
            record = self.records[i]
            record.stats = stats = timed.stats[c.form]
            if regime == "pipelined" and stats.host_enqueue_ms_median is None:
                record.host_enqueue_ms = host_enqueue_ms(fn, self.device, config)
            record.flush_l2 = config.flush_l2 if self.device.type == "cuda" else None
            record.telemetry, record.window_s = telemetry, window_s
            record.peak_tflops = peak_tflops(self.device, c.precision)
        return timed

    def memory(self, fns: list[Any], modules: list[torch.nn.Module], baseline: Any) -> None:
        """One pass per form. On CUDA the other form's model waits on the host meanwhile, so each peak is
        that form's own; on the CPU the peak RSS is the process's (see `collect.MEMORY_FIELDS`)."""
        from bench.measure.memory import measure_memory

        for i, fn in enumerate(fns):
            self.current = i
            others = [m for j, m in enumerate(modules) if j != i]
            if self.device.type == "cuda":
                for other in others:
                    other.to("cpu")
                modules[i].to(self.device)
            _free(self.device)
            calls = 1 if self.cells[i].mode == "infer" else 2  # a train step allocates optimizer state on call 1
            regime = "cudagraph" if self.cells[i].runtime == "cudagraph" else "eager"
            memory = measure_memory(fn, self.device, baseline, calls=calls, regime=regime)
            if not self.runtime.torch_memory:  # an arena of its own: torch's counters miss it, NVML does not
                memory = replace(memory, peak_allocated_mib=None, peak_reserved_mib=None)
            self.records[i].memory = memory

    def outcome(self, timed: Timed) -> UnitOutcome:
        outcomes = []
        for i, cell in enumerate(self.cells):
            stats = timed.stats[cell.form]
            gate = self.records[i].gate
            mismatch = gate is not None and not gate.passed
            outcomes.append(CellOutcome(status="mismatch" if mismatch else "ok",
                                        error=gate.describe() if mismatch else None,
                                        fields=self.records[i].fields(cell),
                                        samples_ms=[float(s) for s in stats.samples_ms]))
        return UnitOutcome(cells=outcomes, pair=dict(timed.pair))

    def failure(self, exc: BaseException) -> UnitOutcome:
        status, text = classify(exc), describe(exc)
        failed = self.cells[self.current]
        outcomes = []
        for i, cell in enumerate(self.cells):
            error = text if i == self.current else f"not measured: its pair's {failed.form} form failed: {text}"
            outcomes.append(CellOutcome(status=status, error=error[: len(text) + 60],
                                        fields=self.records[i].fields(cell)))
        return UnitOutcome(cells=outcomes)


def prebuild(spec: UnitSpec, cache: ModelCache) -> None:
    """Fill `cache` with what `spec` will need: both forms, the fold report and MACs, on the CPU.

    The weights come from `bench.models.build.training_form` with the cache's seed, so they are the ones
    the unit would have built itself. A failure is left for the unit to meet and report as its own
    outcome; nothing is written here.
    """
    import traceback

    if spec.num_threads:
        torch.set_num_threads(spec.num_threads)
    try:
        for cell in spec.cells:
            cache.form(cell.model, cell.form)
            cache.macs_of(cell.model, cell.form, cell.resolution)
        if any(cell.form == "deploy" for cell in spec.cells):
            cache.fold_of(spec.cells[0].model)
    except Exception:  # noqa: BLE001 - the unit itself reports it
        traceback.print_exc()
    finally:
        gc.collect()


def run_unit(spec: UnitSpec, cache: ModelCache) -> UnitOutcome:
    """Run one unit; never raises for a failure of the unit (it becomes the cells' status)."""
    import traceback

    unit = _Unit(spec, cache)
    try:
        baseline = unit.setup()
        modules = unit.prepare()
        unit.run_gate(modules)
        fns = unit.make_fns(modules)
        timed = unit.time(fns)
        unit.memory(fns, modules, baseline)
        return unit.outcome(timed)
    except Exception as exc:  # noqa: BLE001 - every failure is data
        traceback.print_exc()
        return unit.failure(exc)
    finally:
        _free(unit.device)
