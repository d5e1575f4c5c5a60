"""One unit of work inside a worker: a lone cell, or the train/deploy pair of one setting.

Steps: seed, threads and precision switches -> memory baseline -> the model's training form (random BN
statistics, built once per worker) and its deploy form (converted once per worker), copied and prepared
(device, dtype, memory format) for this unit -> the correctness gate FIRST (deploy vs training form on
the same input, cuDNN autotuning off so the gate's batch costs no extra autotune; under every runtime
but eager and cudagraph each form is opened on the timing input first (`Runtime.open`: compiled,
exported, converted, built) and every opened form's output is gated against the PyTorch training form,
so what is timed is what was checked; int8: each form's fp32 graph is gated and its quantization timed,
then each form's int8 error is measured, see `bench.sweep.worker.int8`) -> MACs (once per model, form and
resolution, on the CPU copy) -> timing: a pair in alternating blocks inside one NVML window that covers
only the timed phase, a lone cell alone (int8: then each form's fp32 and int8 graphs side by side) -> a
memory pass per form -> rows.

Any exception becomes the outcome of the cell being worked on ('oom' or 'error', see `failures.classify`),
and so does a model's `sys.exit()` (`bench.models.user.MODEL_CODE_FAILURES`);
the other cell of a pair gets the same status, its error naming the form that failed.
"""

from __future__ import annotations

import copy
import gc
from dataclasses import dataclass, field, replace
from typing import Any, Optional

import torch

from bench.measure.compile_cache import INDUCTOR_RUNTIMES
from bench.measure.precision_switches import no_autotune
from bench.models.gate import GATE_MAX_BATCH, compare_outputs, run_gate
from bench.models.user import MODEL_CODE_FAILURES
from bench.models import workload
from bench.sweep.worker import collect, dynamo_state, faults
from bench.sweep.worker.extra_timings import host_enqueue_ms, host_pass_needed, peak_tflops
from bench.sweep.worker.failures import classify, describe
from bench.sweep.worker.timing import Timed, time_alone, time_pair
from bench.sweep.protocol import CellOutcome, UnitOutcome, UnitSpec


@dataclass
class ModelCache:
    """What a worker keeps between units: each model's training form (eval mode, random BN statistics from
    the sweep's seed), its deploy form (`convert`, once, with its recipe) and MACs per (model, form,
    resolution), all on the CPU in fp32. Units prepare copies, so nothing a unit does (casts, formats,
    faults) leaks."""

    seed: int
    forms: dict[tuple[str, str], torch.nn.Module] = field(default_factory=dict)
    macs: dict[tuple[str, str, int], Optional[int]] = field(default_factory=dict)
    folds: dict[str, Any] = field(default_factory=dict)
    recipes: dict[str, str] = field(default_factory=dict)

    def form(self, model: str, form: str) -> torch.nn.Module:
        key = (model, form)
        if key not in self.forms:
            from bench.models.build import deploy_conversion, training_form

            if form == "train":
                self.forms[key] = training_form(model, self.seed)
            else:
                conversion = deploy_conversion(self.form(model, "train"))
                self.recipes[model] = conversion.recipe
                self.forms[key] = conversion.model.eval()
        return self.forms[key]

    def fold_of(self, model: str) -> Any:
        """What `convert` removed from this model (BatchNorms, multi-branch blocks) and its recipe: once per
        model."""
        if model not in self.folds:
            from bench.reparam import fold_report

            deploy = self.form(model, "deploy")
            self.folds[model] = fold_report(self.form(model, "train"), deploy, self.recipes.get(model))
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
        from bench.sweep.worker import runtimes

        self.runtime = runtimes.get(self.cells[0].runtime)
        self.opened: list[Any] = []
        """Runtimes that open a form: one `Opened` per cell (holding what must stay alive)."""
        self.inputs: list[torch.Tensor] = []

    @property
    def int8(self) -> bool:
        return self.cells[0].precision == "int8"

    @property
    def compiles(self) -> bool:
        """Runs torch.compile (Inductor): dynamo's counters say what it compiled (`bench.sweep.worker.dynamo_state`)."""
        return self.cells[0].runtime in INDUCTOR_RUNTIMES

    def faults(self, i: int) -> list[str]:
        return list(self.spec.faults[i]) if i < len(self.spec.faults) else []

    def setup(self) -> Any:
        from bench.measure.memory import take_baseline
        from bench.measure.precision_switches import apply_precision_settings, reproducibility_flags

        torch.manual_seed(self.spec.seed)
        if self.spec.num_threads:
            torch.set_num_threads(self.spec.num_threads)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("the unit asks for CUDA but torch.cuda.is_available() is False")
        for i in range(len(self.cells)):
            self.current = i
            faults.trigger(self.faults(i), "start")
        apply_precision_settings(self.cells[0].precision)
        self.runtime.begin_unit(self.cells)  # torch.compile: a fresh dynamo per compile group (runtimes.compiled)
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
            modules.append(workload.prepare_model(module, cell, self.device, self.runtime.harness_casts))
        return modules

    def _train_module(self, modules: list[torch.nn.Module], cell: Any) -> torch.nn.Module:
        """The unit's prepared training form, or a prepared copy of the cached one for a lone deploy cell."""
        forms = [c.form for c in self.cells]
        if "train" in forms:
            return modules[forms.index("train")]
        return workload.prepare_model(copy.deepcopy(self.cache.form(cell.model, "train")), cell, self.device,
                                      self.runtime.harness_casts)

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
                                seed=self.spec.seed + 1, harness_casts=self.runtime.harness_casts)
        with no_autotune():
            self.records[d].gate = replace(run_gate(train, modules[d], x, cell.precision),
                                           fold=self.cache.fold_of(cell.model))
        del train, x
        _free(self.device)

    def open_forms(self, modules: list[torch.nn.Module]) -> None:
        """Open each form under the runtime on the timing input, then gate every opened form's output
        (its first samples) against the PyTorch training form's (a train_step opening has no output).
        int8: the gated output is each form's fp32 graph's, the timed one its quantization; then each
        int8 error is measured (`bench.sweep.worker.int8`)."""
        for i, (cell, module) in enumerate(zip(self.cells, modules)):
            self.current = i
            self.inputs.append(workload.make_input(cell, self.device, seed=self.spec.seed,
                                                 harness_casts=self.runtime.harness_casts))
            self.opened.append(self.runtime.open(module, self.inputs[i], cell, self.device,
                                                 share=not self.faults(i), seed=self.spec.seed))
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
            compared = "fp32 graph" if self.int8 else "output"  # int8 is gated in fp32 (agreement.GATED_IN)
            result = replace(compare_outputs(reference, self.opened[i].output()[:n], c.precision),
                             compared=f"{self.runtime.name} {compared} of the {c.form} form",
                             reference="the PyTorch training form")
            if c.form == "deploy":
                result = replace(result, fold=self.cache.fold_of(c.model))
            self.records[i].gate = result
        if self.int8:
            self._int8_errors(train)
        del train, reference
        _free(self.device)

    def _int8_errors(self, train: torch.nn.Module) -> None:
        from bench.quant.evaluate import measure_errors
        from bench.sweep.worker.int8 import Int8Record

        forms = [opened.int8 for opened in self.opened]
        errors = measure_errors(forms, train, tuple(self.inputs[0].shape), self.spec.seed, self.device)
        for i, (form, (own, of_train)) in enumerate(zip(forms, errors)):
            self.records[i].int8 = Int8Record(form.scheme, vs_fp32=own, vs_train_fp32=of_train)

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
                x = workload.make_input(cell, self.device, seed=self.spec.seed,
                                                 harness_casts=self.runtime.harness_casts)
                fn = workload.make_fn(module, x, cell, self.device)
            faults.trigger(self.faults(i), "workload", self.device)
            fns.append(fn)
        return fns

    def time(self, fns: list[Any], modules: list[torch.nn.Module]) -> Timed:
        from bench.measure.nvml import TelemetrySampler, energy_reader

        cell = self.cells[0]
        config, regime = self.spec.timing, self.runtime.regime(self.device)
        samplers: list[Any] = []

        def window() -> Any:
            samplers.append(TelemetrySampler(self.device))
            return samplers[-1]

        compiles = self.compiles
        frames = dynamo_state.frames() if compiles else None  # importing dynamo costs an eager unit a second
        if self.spec.is_pair:
            self.current = 0
            timed = time_pair({c.form: fn for c, fn in zip(self.cells, fns)}, self.device, regime, config,
                              window, self.spec.seed, energy_reader(self.device))
        else:
            timed = time_alone(cell.form, fns[0], self.device, regime, config, window)
        telemetry = samplers[-1].result if samplers else None
        recompiles = dynamo_state.delta(frames, dynamo_state.frames()) if compiles else None  # a pair's: both
        for i, (c, fn) in enumerate(zip(self.cells, fns)):
            self.current = i
            record = self.records[i]
            if compiles:
                record.compile_recompiles = recompiles
            record.stats = stats = timed.stats[c.form]
            # a pair's energy is each form's own blocks'; a lone cell's is its whole timed window's
            record.energy_j = (timed.energy_j.get(c.form) if self.spec.is_pair
                               else telemetry.energy_j if telemetry is not None else None)
            if regime == "pipelined" and stats.host_enqueue_ms_median is None:
                if host_pass_needed(stats.median_ms, modules[i]):
                    record.host_enqueue_ms = host_enqueue_ms(fn, self.device, config)
                else:
                    record.host_bound_ruled_out = True
            record.flush_l2 = config.flush_l2 if self.device.type == "cuda" else None
            record.telemetry = telemetry
            record.peak_tflops = peak_tflops(self.device, c.precision)
        return timed

    def time_int8(self) -> None:
        """int8: each form's fp32 and int8 sessions side by side (`bench.sweep.worker.int8.time_against_fp32`)."""
        if not self.int8:
            return
        from bench.sweep.worker.int8 import time_against_fp32

        config, regime = self.spec.timing, self.runtime.regime(self.device)
        for i, form in enumerate(opened.int8 for opened in self.opened):
            self.current = i
            self.records[i].int8.speedup = time_against_fp32(form, self.device, regime, config, self.spec.seed)

    def memory(self, fns: list[Any], modules: list[torch.nn.Module], baseline: Any) -> None:
        """One pass per form. On CUDA the other form's model waits on the host meanwhile, so each peak is
        that form's own; on the CPU the peak RSS is the process's (see `collect.MEMORY_FIELDS`). A
        cudagraph cell's pass captures `graph_calls` calls, as its timing did."""
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
            # a graph of as many calls as the timed graph holds: its pool is what the cell held while timed
            memory = measure_memory(fn, self.device, baseline, calls=calls, regime=regime,
                                    graph_calls=self.spec.timing.graph_calls)
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
        return UnitOutcome(cells=outcomes, pair=timed.pair)

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
    except MODEL_CODE_FAILURES:  # the unit itself reports it
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
        timed = unit.time(fns, modules)
        unit.time_int8()
        unit.memory(fns, modules, baseline)
        return unit.outcome(timed)
    except MODEL_CODE_FAILURES as exc:  # every failure is data, a model's sys.exit() too
        traceback.print_exc()
        return unit.failure(exc)
    finally:
        _free(unit.device)
