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
    assert result.speedup == pytest.approx(result.train.median_ms / result.deploy.median_ms, rel=0.05)
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
    with pytest.raises(ValueError, match="precision 'fp8' is unknown; valid: fp32, fp16, bf16"):
        benchmark(_net(), torch.randn(1, 3, 32, 32), precision="fp8")
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
