"""The parity audit of third-party deploy forms: for each timm architecture, in float64, `to_deploy` and
timm's own `reparameterize_model` against the training form, with what each left unfolded.

Per model: random weights and random BN statistics (`randomize_bn_`, seeded), eval mode, float64, one
input (1 x 3 x 64 x 64 unless the model needs its own size). For each deploy form: max relative error
(`agreement.output_error`), BatchNorms left, blocks left unconverted (`fold_report.count_multibranch`)
and foldable pairs left in the traced graph (`graph_fold.find_pairs`). timm's recipe runs with float64
as torch's default dtype: its `fuse()` methods build their new modules in the default dtype, and in
float32 the audit would measure that rounding (~1e-7), not timm's algebra.

The training form's own reordering error is measured too (`reorder_rel_err`: the same model and input in
channels_last, i.e. the same sums in another order): where it exceeds the bar, the model is
ill-conditioned at these random weights and its bar is `PARITY_FLOOR_FACTOR` times that error
(`agreement`).

Verdicts (`verdict`): "wrong" when the error exceeds the bar or the conversion fails;
"exact and complete" when nothing foldable is left and it folded at least what timm's recipe folds
(BatchNorms left and blocks left no more than timm's); else "exact but partial", with what is left.
"""

from __future__ import annotations

import copy
import dataclasses
import time
import warnings
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from bench.models.agreement import PARITY_FLOOR_FACTOR, PARITY_FP64, output_error
from bench.models.init import randomize_bn_
from bench.models.registry import create
from bench.models.timm_catalog import TimmArch
from bench.reparam import convert
from bench.reparam.conventions import factory_defaults
from bench.reparam.fold_report import count_batchnorms, count_multibranch
from bench.reparam.graph_fold import find_pairs

WRONG, PARTIAL, COMPLETE = "wrong", "exact but partial", "exact and complete"
VERDICTS: tuple[str, ...] = (COMPLETE, PARTIAL, WRONG)


@dataclass(frozen=True)
class Left:
    """What a deploy form left: its error against the training form and what it did not fold."""

    max_rel_err: Optional[float]
    batchnorms: Optional[int]
    multibranch: Optional[int]
    foldable_pairs: Optional[int]
    error: str = ""


@dataclass(frozen=True)
class ParityRow:
    """One model of the audit: a row of the CSV, its field names the columns."""

    model: str
    family: str
    input: str
    timm_version: str
    verdict: str
    reason: str
    max_rel_err: Optional[float]
    reorder_rel_err: float
    """The training form against itself in channels_last: its own sensitivity to the order of its sums."""
    batchnorms_train: int
    batchnorms_left: Optional[int]
    multibranch_train: int
    multibranch_left: Optional[int]
    foldable_pairs_left: Optional[int]
    deploy_recipe: str
    behind_timm: Optional[bool]
    """True if this deploy form leaves more BatchNorms or blocks than timm's recipe (None: one failed)."""
    timm_verdict: str
    timm_reason: str
    timm_max_rel_err: Optional[float]
    timm_batchnorms_left: Optional[int]
    timm_multibranch_left: Optional[int]
    timm_foldable_pairs_left: Optional[int]
    seconds: float


COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ParityRow))


def behind(left: Left, reference: Optional[Left]) -> Optional[bool]:
    """Whether `left` leaves more BatchNorms or blocks than `reference` (None where either failed)."""
    if left.error or reference is None or reference.error:
        return None
    return left.batchnorms > reference.batchnorms or left.multibranch > reference.multibranch


def bar(reorder_rel_err: float = 0.0) -> float:
    """The largest max_rel_err that counts as exact, given the training form's own reordering error."""
    return max(PARITY_FP64, PARITY_FLOOR_FACTOR * reorder_rel_err)


def verdict(left: Left, reference: Optional[Left] = None, reorder_rel_err: float = 0.0) -> tuple[str, str]:
    """(verdict, reason) of one deploy form, compared with `reference` (timm's recipe) where given."""
    if left.error:
        return WRONG, left.error
    limit = bar(reorder_rel_err)
    if left.max_rel_err is None or not left.max_rel_err <= limit:
        return WRONG, f"max_rel_err {left.max_rel_err:.3g} > {limit:.3g}"
    short = []
    if left.multibranch:
        short.append(f"{left.multibranch} blocks left unconverted")
    if left.foldable_pairs:
        short.append(f"{left.foldable_pairs} foldable pairs left")
    if behind(left, reference):
        short.append(f"{left.batchnorms} BatchNorms and {left.multibranch} blocks left where timm's recipe "
                     f"leaves {reference.batchnorms} and {reference.multibranch}")
    if short:
        return PARTIAL, "; ".join(short)
    notes = [f"{left.batchnorms} BatchNorms kept: no fold this package proves exact applies to them"
             ] if left.batchnorms else []
    if limit > PARITY_FP64:
        notes.append(f"ill-conditioned training form: reordering its own sums moves its output by "
                     f"{reorder_rel_err:.2g}, so exact means within {limit:.2g}")
    return COMPLETE, "; ".join(notes)


def _timm_version() -> str:
    import timm

    return timm.__version__


def build(arch: TimmArch, resolution: int = 64, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """The float64 training form (seeded weights, random BN statistics, eval) and its input: `resolution`
    (passed as `img_size` where the model takes it), else the model's default input size."""
    torch.manual_seed(seed)
    try:
        model = create(f"timm:{arch.name}", img_size=resolution)
    except TypeError:  # the model takes no img_size
        model = create(f"timm:{arch.name}")
    randomize_bn_(model, torch.Generator().manual_seed(seed))
    model = model.double().eval()
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 3, resolution, resolution, generator=generator, dtype=torch.float64)
    try:
        with torch.no_grad():
            model(x)
    except (RuntimeError, ValueError, AssertionError):  # a fixed input size (position embeddings, biases)
        size = tuple(model.pretrained_cfg["input_size"])
        x = torch.randn(1, *size, generator=generator, dtype=torch.float64)
    return model, x


def _ours(model: nn.Module) -> tuple[nn.Module, str]:
    with warnings.catch_warnings():  # untraceable parts: the counts below say what was left
        warnings.simplefilter("ignore")
        conversion = convert(model)
    return conversion.model, conversion.recipe


def _timms(model: nn.Module) -> tuple[nn.Module, str]:
    from timm.utils.model import reparameterize_model

    with torch.no_grad(), factory_defaults(model):
        return reparameterize_model(model).eval(), "timm.utils.model.reparameterize_model"


def _measured(make, model: nn.Module, x: torch.Tensor, reference: torch.Tensor) -> tuple[Left, str]:
    """(what the deploy form made by `make` left, its recipe); an exception becomes the Left's error."""
    try:
        deploy, recipe = make(model)
    except Exception as exc:  # third-party conversion code may raise anything: the audit records it
        return Left(None, None, None, None, f"conversion failed: {type(exc).__name__}: {exc}"), ""
    with torch.no_grad():
        _, rel = output_error(reference, deploy(x))
    return Left(rel, count_batchnorms(deploy), count_multibranch(deploy), len(find_pairs(deploy).pairs)), recipe


def _reorder_error(model: nn.Module, x: torch.Tensor, reference: torch.Tensor) -> float:
    """max_rel_err of the training form against itself run in channels_last (its sums in another order)."""
    reordered = copy.deepcopy(model).to(memory_format=torch.channels_last)
    return output_error(reference, reordered(x.contiguous(memory_format=torch.channels_last)))[1]


def audit(arch: TimmArch, resolution: int = 64, seed: int = 0) -> ParityRow:
    """Build, convert both ways, measure; see the module docstring."""
    start = time.perf_counter()
    model, x = build(arch, resolution, seed)
    with torch.no_grad():
        reference = model(x)
        floor = _reorder_error(model, x, reference)
    ours, recipe = _measured(_ours, model, x, reference)
    theirs, _ = _measured(_timms, model, x, reference)
    ours_verdict, reason = verdict(ours, None if theirs.error else theirs, floor)
    timm_verdict, timm_reason = verdict(theirs, reorder_rel_err=floor)
    return ParityRow(
        arch.name, arch.family, "x".join(map(str, x.shape)), _timm_version(), ours_verdict, reason,
        ours.max_rel_err, floor, count_batchnorms(model), ours.batchnorms, count_multibranch(model), ours.multibranch,
        ours.foldable_pairs, recipe, behind(ours, theirs), timm_verdict, timm_reason, theirs.max_rel_err, theirs.batchnorms,
        theirs.multibranch, theirs.foldable_pairs, round(time.perf_counter() - start, 1),
    )
