"""Deploy form == training form, measured: the check behind `bench verify`, the tests and the sweep's gate.

Error measure and default tolerances: `bench.models.agreement` (shared with the sweep's gate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from bench.models.agreement import output_error, tolerance_for
from bench.models.init import randomize_bn_
from bench.models.registry import create
from bench.reparam import FoldReport, fold_report, to_deploy
from bench.reparam.fold_report import KernelRange, kernel_ranges

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class Equivalence:
    label: str
    dtype: str
    max_abs: float
    max_rel: float
    tolerance: float
    fold: Optional[FoldReport] = None
    """What the conversion removed; a deploy form that folded nothing foldable fails (see `FoldReport`)."""
    kernel_ranges: tuple[KernelRange, ...] = ()
    """Per-layer weight range of the deploy kernels, the quantity QARepVGG keeps small for int8."""

    @property
    def widest_kernel(self) -> Optional[KernelRange]:
        return max(self.kernel_ranges, key=lambda r: r.width, default=None)

    @property
    def passed(self) -> bool:
        folded = self.fold is None or self.fold.problem() is None
        return self.max_rel <= self.tolerance and folded  # NaN compares False, so NaN fails


@torch.no_grad()
def compare_forms(model: nn.Module, example: torch.Tensor, label: str, tolerance: float) -> Equivalence:
    """Compare `model` (eval mode, as given) with `to_deploy(model)` on `example`."""
    model.eval()
    reference = model(example)
    deployed = to_deploy(model)
    max_abs, max_rel = output_error(reference, deployed(example))
    dtype = str(example.dtype).removeprefix("torch.")
    return Equivalence(
        label, dtype, max_abs, max_rel, tolerance, fold=fold_report(model, deployed),
        kernel_ranges=kernel_ranges(deployed),
    )


def check_module(
    build: Callable[[], nn.Module],
    input_shape: tuple[int, ...],
    label: str,
    dtype: torch.dtype = torch.float32,
    tolerance: float | None = None,
    seed: int = 0,
) -> Equivalence:
    """Build with seeded random weights, randomise every BN (`randomize_bn_`), compare the two forms."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build()
    generator = torch.Generator().manual_seed(seed)
    randomize_bn_(model, generator)
    model = model.to(dtype).eval()
    example = torch.randn(input_shape, generator=generator, dtype=torch.float64).to(dtype)
    tol = tolerance_for(dtype) if tolerance is None else tolerance
    return compare_forms(model, example, label, tol)


def check_model(
    name: str, dtype: torch.dtype = torch.float32, resolution: int = 64, batch: int = 1, seed: int = 0, **kwargs
) -> Equivalence:
    """`check_module` for registry model `name` on a `batch x 3 x resolution x resolution` input."""
    return check_module(lambda: create(name, **kwargs), (batch, 3, resolution, resolution), name, dtype, seed=seed)
