"""`fold_report(train, deploy)`: what conversion removed, and whether anything foldable was left behind.

An unconverted network equals itself, so an equivalence check alone passes a "deploy form" that folded
nothing. The report counts BatchNorms and unconverted blocks in both forms: this package's `ReparamBlock`s
still holding their branches, and third-party modules that would still change if converted by their own
convention (`conventions.would_convert`: timm's RepVggDw, GhostModuleV3, a YOLOv6 RepVGGBlock, ...);
`problem()` names a deploy form that changed nothing although its training form had something to fold, or
that still holds a foldable pair (`graph_fold.PAIR_KINDS`) or block. It also carries how the deploy form
was made (`recipe`, from `convert`), when known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from torch import nn

from bench.reparam.base import ReparamBlock
from bench.reparam.conventions import would_convert
from bench.reparam.graph_fold import find_pairs


def count_batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def count_multibranch(model: nn.Module) -> int:
    """Blocks still in their training form: `ReparamBlock`s holding their branches, and third-party modules
    whose own conversion would still change them."""
    return sum(
        (not m.deployed) if isinstance(m, ReparamBlock) else would_convert(m) for m in model.modules()
    )


def count_foldable(model: nn.Module) -> int:
    """Foldable pairs in the traced forward (`graph_fold.find_pairs`) plus unconverted blocks."""
    return len(find_pairs(model).pairs) + count_multibranch(model)


@dataclass(frozen=True)
class FoldReport:
    batchnorms_before: int
    batchnorms_after: int
    multibranch_before: int
    multibranch_after: int
    foldable_before: int
    foldable_after: int
    recipe: Optional[str] = None
    """How the deploy form was made (`Conversion.recipe`), when the caller knows."""

    @property
    def changed(self) -> bool:
        return (self.batchnorms_after, self.multibranch_after) != (self.batchnorms_before, self.multibranch_before)

    def problem(self) -> Optional[str]:
        """None when the deploy form folded what there was; else what is wrong, in one sentence."""
        if not self.changed and self.foldable_before:
            return (f"the deploy form is unchanged ({self.batchnorms_after} BatchNorms, {self.multibranch_after} "
                    f"multi-branch blocks) although the training form has {self.foldable_before} foldable "
                    "pairs or blocks; was it converted with bench.reparam.to_deploy?")
        if self.foldable_after:
            return f"the deploy form still holds {self.foldable_after} foldable pairs or blocks"
        return None

    def describe(self) -> str:
        return (f"BatchNorms {self.batchnorms_before} -> {self.batchnorms_after}, multi-branch blocks "
                f"{self.multibranch_before} -> {self.multibranch_after}, foldable left {self.foldable_after}")


@dataclass(frozen=True)
class KernelRange:
    """Range of one conv's weights: what a per-tensor int8 scale must cover (QARepVGG Sec. 3)."""

    layer: str
    low: float
    high: float

    @property
    def width(self) -> float:
        return self.high - self.low


def kernel_ranges(model: nn.Module) -> tuple[KernelRange, ...]:
    """Per conv layer, min and max of its weights (for a deploy form: the folded kernels)."""
    return tuple(
        KernelRange(name, float(m.weight.min()), float(m.weight.max()))
        for name, m in model.named_modules() if isinstance(m, nn.Conv2d)
    )


def fold_report(train: nn.Module, deploy: nn.Module, recipe: Optional[str] = None) -> FoldReport:
    return FoldReport(
        count_batchnorms(train), count_batchnorms(deploy), count_multibranch(train), count_multibranch(deploy),
        count_foldable(train), count_foldable(deploy), recipe,
    )
