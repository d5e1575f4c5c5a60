"""Python API: benchmark one network, training form against its deploy form, as a sweep's cell pair does.

    from bench.api import benchmark
    result = benchmark(my_net, torch.randn(8, 3, 224, 224))
    print(result.summary())

The deploy form is `deploy=` when given, else `convert(model)`, else `bench.reparam.to_deploy(model)`.
Both forms run in eval mode, under the switches a sweep's cell of that precision runs under
(`bench.measure.precision_switches.precision_settings`: fp32 is IEEE fp32 with TF32 off, tf32 turns it on, cuDNN
autotuning on; restored on return, so the caller's process keeps its own settings). The gate
(`bench.models.gate.run_gate`, tolerance by precision, autotuning off as in a cell) compares
their outputs on the example input, and only a passing pair is timed, with
`bench.measure.paired.measure_pair` (the two forms in alternating blocks, speedup = median train /
median deploy with its 95% interval over the block pairs). A mismatch is returned with no timing, so a
speedup of a deploy form that computes something else cannot be read off the result.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Callable, Optional

import torch
from torch import nn

from bench.measure.paired import PairMeasurement, measure_pair
from bench.measure.precision_switches import dtype_for, no_autotune, precision_settings
from bench.measure.stats import LatencyStats
from bench.measure.timing import TimingConfig
from bench.models.gate import GateResult, run_gate
from bench.reparam import fold_report
from bench.models.workload import infer_fn
from bench.results.precision import QUANTIZED, TORCH_PRECISIONS as PRECISIONS
from bench.usage import unknown


@dataclass(frozen=True)
class BenchmarkResult:
    """The gate's verdict and, when it passed, both forms' latency statistics and the speedup."""

    gate: GateResult
    precision: str
    device: str
    regime: str
    pair: Optional[PairMeasurement] = None
    settings: Optional[dict] = None
    """The switches both forms ran under (`bench.measure.precision_switches.reproducibility_flags()` column names)."""

    @property
    def status(self) -> str:
        return "ok" if self.gate.passed else "mismatch"

    @property
    def train(self) -> Optional[LatencyStats]:
        return self.pair.stats["train"] if self.pair else None

    @property
    def deploy(self) -> Optional[LatencyStats]:
        return self.pair.stats["deploy"] if self.pair else None

    @property
    def speedup(self) -> Optional[float]:
        """Train / deploy latency, the median over block pairs (> 1: the deploy form is faster)."""
        return self.pair.speedup_median if self.pair else None

    @property
    def speedup_ci(self) -> Optional[tuple[float, float]]:
        """The speedup's 95% interval; None on a mismatch or when too few block pairs ran."""
        if self.pair is None or self.pair.speedup_ci_low is None:
            return None
        return (self.pair.speedup_ci_low, self.pair.speedup_ci_high)

    def summary(self) -> str:
        if self.pair is None:
            return f"mismatch, not timed: {self.gate.describe()}"
        ci = self.speedup_ci
        interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
        return (f"train {self.train.median_ms:.4g} ms, deploy {self.deploy.median_ms:.4g} ms (medians, "
                f"{self.device}, {self.precision}); speedup {self.speedup:.3f}{interval}; gate "
                f"max_rel_err {self.gate.max_rel_err:.2g} <= {self.gate.tolerance:g}")


def _deploy_form(model: nn.Module, deploy: Optional[nn.Module],
                 convert: Optional[Callable[[nn.Module], nn.Module]]) -> nn.Module:
    if deploy is not None and convert is not None:
        raise ValueError("pass deploy= (a converted module) or convert= (a function), not both")
    if deploy is not None:
        return deploy
    if convert is not None:
        converted = convert(copy.deepcopy(model))
        if not isinstance(converted, nn.Module):
            raise TypeError(f"convert returned a {type(converted).__name__}, not a torch.nn.Module")
        return converted
    from bench.reparam import to_deploy

    return to_deploy(model)


def _check_types(example_input: object, convert: object, config: object) -> None:
    """A TypeError saying what to pass, before anything runs (not an AttributeError from deep inside)."""
    if not isinstance(example_input, torch.Tensor):
        raise TypeError(f"example_input must be a torch.Tensor, one batch on the device to time on (e.g. "
                        f"torch.randn(8, 3, 224, 224)); got a {type(example_input).__name__}")
    if convert is not None and not callable(convert):
        raise TypeError(f"convert must be a function taking the model and returning its deploy form; got a "
                        f"{type(convert).__name__}")
    if config is not None and not isinstance(config, TimingConfig):
        hint = "; for a dict of settings pass TimingConfig(**settings)" if isinstance(config, dict) else ""
        raise TypeError(f"config must be a bench.measure.timing.TimingConfig (e.g. TimingConfig(min_time_s=0.5)) "
                        f"or None for the sweep's defaults; got a {type(config).__name__}{hint}")


def benchmark(model: nn.Module, example_input: torch.Tensor, *, deploy: Optional[nn.Module] = None,
              convert: Optional[Callable[[nn.Module], nn.Module]] = None, precision: str = "fp32",
              config: Optional[TimingConfig] = None, seed: int = 0) -> BenchmarkResult:
    """Gate, then time `model` (training form) against its deploy form on `example_input`'s device.

    `model` is put in eval mode; for fp16/bf16 both forms and the input are cast copies. `config`: the
    timing settings (`bench.measure.timing.TimingConfig`), the sweep's defaults when None. The precision's
    switches hold while this runs and are restored afterwards (module docstring).
    """
    if not isinstance(model, nn.Module) or (deploy is not None and not isinstance(deploy, nn.Module)):
        raise TypeError("model (and deploy, when given) must be torch.nn.Module instances")
    _check_types(example_input, convert, config)
    if precision in QUANTIZED:
        raise ValueError(f"precision '{precision}' needs a runtime that quantizes the exported graph, which "
                         f"benchmark() does not drive: use `bench run --precision {precision} --runtime onnxruntime` "
                         f"or `bench quant`; valid here: {', '.join(PRECISIONS)}")
    if precision not in PRECISIONS:
        raise unknown("precision", precision, PRECISIONS)
    with precision_settings(precision) as settings:
        return _gate_and_time(model, example_input, deploy, convert, precision, config, seed, settings)


def _gate_and_time(model: nn.Module, example_input: torch.Tensor, deploy: Optional[nn.Module],
                   convert: Optional[Callable[[nn.Module], nn.Module]], precision: str,
                   config: Optional[TimingConfig], seed: int, settings: dict) -> BenchmarkResult:
    device = example_input.device
    train = model.eval()
    deployed = _deploy_form(train, deploy, convert).eval()
    fold = fold_report(train, deployed)  # a deploy form that folded nothing fails the gate
    dtype = dtype_for(precision)
    if dtype != torch.float32:
        train, deployed = copy.deepcopy(train).to(dtype), copy.deepcopy(deployed).to(dtype)
        example_input = example_input.to(dtype)
    train, deployed = train.to(device), deployed.to(device)
    with no_autotune():
        gate = replace(run_gate(train, deployed, example_input, precision), fold=fold)
    regime = "cpu" if device.type == "cpu" else "pipelined"
    if not gate.passed:
        return BenchmarkResult(gate, precision, str(device), regime, settings=settings)
    fns = {"train": infer_fn(train, example_input), "deploy": infer_fn(deployed, example_input)}
    pair = measure_pair(fns, device, regime, config=config, seed=seed)
    return BenchmarkResult(gate, precision, str(device), regime, pair, settings)
