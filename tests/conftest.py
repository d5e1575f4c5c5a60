"""Shared test helpers."""

from __future__ import annotations

import torch
from torch import nn

from bench.models.init import randomize_bn_


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN statistics and affine parameters (and random zero convs), reproducibly from `seed`."""
    return randomize_bn_(model, torch.Generator().manual_seed(seed))


def pytest_runtest_setup(item) -> None:
    """A `gpu` test on a machine without CUDA fails at once with the reason, rather than skipping
    (a GPU run that silently skipped would look green) or failing somewhere unrelated."""
    if item.get_closest_marker("gpu") is not None and not torch.cuda.is_available():
        import pytest

        pytest.fail(
            f"'{item.name}' is a gpu test and needs an NVIDIA GPU with CUDA, but "
            f"torch.cuda.is_available() is False (torch {torch.__version__}, CUDA build: "
            f"{torch.version.cuda}); run `pytest -m gpu` on a GPU machine",
            pytrace=False,
        )
