"""bench.api.benchmark: the gate decides, a passing pair is timed for real, a mismatch is not timed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.api import benchmark
from bench.measure.timing import TimingConfig
from bench.models import create, randomize_bn_

FAST = TimingConfig(min_samples=5, min_time_s=0.05, timeout_s=1.0, warmup_max_s=0.2, cpu_warmup_s=0.05,
                    pair_block_s=0.02)


def _net() -> nn.Module:
    torch.manual_seed(0)
    model = create("repvgg_a0")
    randomize_bn_(model, torch.Generator().manual_seed(0))
    return model.eval()


def test_converted_pair_passes_the_gate_and_is_timed():
    result = benchmark(_net(), torch.randn(1, 3, 32, 32), config=FAST)
    assert result.status == "ok" and result.gate.max_rel_err <= 1e-4
    assert result.train.n >= 5 and result.deploy.n >= 5 and result.speedup > 0
    # the paired speedup equals the ratio of the medians on a steady machine; under drift (a loaded CI
    # machine) only the paired value is stable, so only its size is held here
    assert 1 / 3 < result.speedup / (result.train.median_ms / result.deploy.median_ms) < 3
    low, high = result.speedup_ci
    assert low <= result.speedup <= high
    assert "speedup" in result.summary()


def test_wrong_deploy_form_is_a_mismatch_and_not_timed():
    model = _net()
    result = benchmark(model, torch.randn(1, 3, 32, 32), convert=lambda m: _broken(m), config=FAST)
    assert result.status == "mismatch" and result.pair is None and result.speedup is None
    assert "mismatch, not timed" in result.summary()


def _broken(model: nn.Module) -> nn.Module:
    from bench.reparam import to_deploy

    deployed = to_deploy(model)
    with torch.no_grad():
        next(deployed.parameters()).mul_(1.5)
    return deployed


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="precision 'fp8' is unknown; known: fp32, tf32, fp16, bf16$"):
        benchmark(_net(), torch.randn(1, 3, 32, 32), precision="fp8")
    with pytest.raises(ValueError, match="'int8' needs a runtime that quantizes.*--runtime onnxruntime.*"
                                         "valid here: fp32, tf32, fp16, bf16$"):
        benchmark(_net(), torch.randn(1, 3, 32, 32), precision="int8")
    with pytest.raises(ValueError, match="not both"):
        benchmark(_net(), torch.randn(1, 3, 32, 32), deploy=nn.Identity(), convert=lambda m: m)
    with pytest.raises(TypeError, match="convert returned a int"):
        benchmark(_net(), torch.randn(1, 3, 32, 32), convert=lambda m: 3)


@pytest.mark.parametrize("kwargs, message", [
    ({"example_input": [[1.0, 2.0]]}, r"example_input must be a torch.Tensor, .* got a list"),
    ({"example_input": torch.randn(1, 3, 8, 8).numpy()}, r"example_input must be a torch.Tensor.*got a ndarray"),
    ({"config": {"min_time_s": 0.5}}, r"config must be a bench.measure.timing.TimingConfig .*got a dict; "
                                      r"for a dict of settings pass TimingConfig\(\*\*settings\)"),
    ({"convert": "to_deploy"}, r"convert must be a function .* got a str"),
])
def test_wrong_argument_types_say_what_to_pass(kwargs, message):
    arguments = {"example_input": torch.randn(1, 3, 8, 8), **kwargs}
    with pytest.raises(TypeError, match=message):
        benchmark(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)), **arguments)


def test_a_given_deploy_form_is_gated_against_the_training_form():
    from bench.reparam import to_deploy

    model = _net()
    result = benchmark(model, torch.randn(1, 3, 32, 32), deploy=to_deploy(model), config=FAST)
    assert result.status == "ok" and result.deploy is not None


def test_a_deploy_form_that_folded_nothing_is_a_mismatch():
    """Handing the training form itself as the 'deploy form' equals it exactly, yet converts nothing."""
    import torch
    from torch import nn

    from bench.api import benchmark

    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()).eval()
    result = benchmark(model, torch.randn(1, 3, 8, 8), deploy=model)
    assert result.status == "mismatch" and result.pair is None
    assert "not converted" in result.gate.describe()


def _switches_seen(model: nn.Module) -> set:
    """(cuDNN conv fp32 precision, cudnn.benchmark) at every forward of `model` and of its deploy copy (a
    hook function survives deepcopy as the same object, so both forms report into one set)."""
    from bench.measure.precision_switches import reproducibility_flags

    seen: set = set()

    def record(module, args):
        flags = reproducibility_flags()
        seen.add((flags["tf32_cudnn"], flags["cudnn_benchmark"]))

    model[0].register_forward_pre_hook(record)
    return seen


@pytest.mark.parametrize("precision, tf32", [("fp32", False), ("tf32", True)])
def test_the_precision_switches_of_a_cell_hold_while_both_forms_run_and_are_restored(precision, tf32):
    """As a sweep cell: TF32 as the precision says, cuDNN autotuning off for the gate and on for timing;
    the caller's own switches (here torch's defaults, autotuning off) are back afterwards."""
    from bench.measure.precision_switches import reproducibility_flags
    from bench.reparam import RepVGGBlock

    torch.manual_seed(0)
    model = nn.Sequential(RepVGGBlock(3, 8), RepVGGBlock(8, 8)).eval()
    randomize_bn_(model, torch.Generator().manual_seed(0))
    seen = _switches_seen(model)
    torch.backends.cudnn.benchmark = False
    before = reproducibility_flags()
    result = benchmark(model, torch.randn(2, 3, 16, 16), precision=precision, config=FAST)
    assert result.status == "ok" and result.precision == precision
    assert seen == {(tf32, False), (tf32, True)}  # the gate without autotuning, the timing with it
    assert result.settings["tf32_cudnn"] is tf32 and result.settings["cudnn_benchmark"] is True
    assert reproducibility_flags() == before


@pytest.mark.gpu
def test_on_cuda_fp32_is_ieee_fp32_and_a_deep_net_passes_the_fp32_gate():
    """torch's defaults run cuDNN convolutions in TF32 with autotuning off; a cell's fp32 does neither, and
    the 1e-4 gate of a deep network holds only in IEEE fp32."""
    from bench.measure.precision_switches import reproducibility_flags

    before = reproducibility_flags()
    result = benchmark(_net().cuda(), torch.randn(8, 3, 224, 224, device="cuda"), config=FAST)
    assert result.status == "ok", result.gate.describe()
    assert result.settings["tf32_cudnn"] is False and result.settings["cudnn_benchmark"] is True
    assert reproducibility_flags() == before
