"""Which modules are provably a plain conv, BatchNorm or Linear, and how a folded one is written back.

A subclass may change what its parent computes (timm's `Conv2dSame` pads in `forward` with padding=0 in its
attributes; `BatchNormAct2d` applies an activation after the BN; `StdConv2d` standardises its weight), so
`isinstance` proves nothing: a module folds if its type is exactly the torch class, or a subclass listed here
whose extra behaviour is handled. Subclasses are named by module path, so timm need not be installed.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

CONV_SUBCLASSES: frozenset[str] = frozenset({"timm.layers.conv2d_same.Conv2dSame"})
"""Convs whose forward is `conv2d` with their own weight and bias after a padding of the input: a fold
that writes the new weight and bias into the module itself keeps that padding."""

PLAIN_BN2D: tuple[type, ...] = (nn.BatchNorm2d, nn.SyncBatchNorm)
"""Exact types whose eval-mode forward is the affine map of their running statistics and nothing else."""

BN_SUBCLASSES: frozenset[str] = frozenset({"timm.layers.norm_act.BatchNormAct2d"})
"""BatchNorms followed, inside the module, by `drop` then `act`: the BN folds into the conv before it and
the module is replaced by its `drop` and `act`, which stay."""


def _qualname(module: nn.Module) -> str:
    return f"{type(module).__module__}.{type(module).__qualname__}"


def is_conv(module: nn.Module) -> bool:
    """A Conv2d, or a handled subclass of it (`CONV_SUBCLASSES`)."""
    return type(module) is nn.Conv2d or (isinstance(module, nn.Conv2d) and _qualname(module) in CONV_SUBCLASSES)


def is_unpadded_conv(module: nn.Module) -> bool:
    """A plain Conv2d that pads nothing: only such a conv may take the BatchNorm before it."""
    return type(module) is nn.Conv2d and (module.padding == "valid" or module.padding == (0, 0))


def is_bn2d(module: nn.Module) -> bool:
    """A BatchNorm2d with running statistics, or a handled subclass (`BN_SUBCLASSES`)."""
    plain = type(module) in PLAIN_BN2D or (
        isinstance(module, nn.BatchNorm2d) and _qualname(module) in BN_SUBCLASSES)
    return plain and module.running_mean is not None


def is_plain_bn2d(module: nn.Module) -> bool:
    """Exactly a BatchNorm2d with running statistics (nothing after the affine map)."""
    return type(module) is nn.BatchNorm2d and module.running_mean is not None


def is_bn1d(module: nn.Module) -> bool:
    return type(module) is nn.BatchNorm1d and module.running_mean is not None


def is_linear(module: nn.Module) -> bool:
    return type(module) is nn.Linear


def is_handled_subclass(module: nn.Module) -> bool:
    """A subclass listed here: fx must keep it as one call (it would otherwise trace into its forward)."""
    return _qualname(module) in CONV_SUBCLASSES | BN_SUBCLASSES


def bn_remainder(bn: nn.Module) -> nn.Module:
    """What stays of a BatchNorm once folded: nothing for a plain one; `drop` then `act` for BatchNormAct2d."""
    if type(bn) in PLAIN_BN2D:
        return nn.Identity()
    tail = [m for m in (bn.drop, bn.act) if type(m) is not nn.Identity]
    return nn.Sequential(*tail) if tail else nn.Identity()


@torch.no_grad()
def write_weight_bias(module: nn.Module, weight: Tensor, bias: Tensor) -> nn.Module:
    """In place: `module.weight` and a `module.bias` (added if it had none) hold the float64 (weight, bias),
    cast to the module's dtype once. The module keeps its type, so a subclass keeps what it adds."""
    like = module.weight
    module.weight = nn.Parameter(weight.to(dtype=like.dtype, device=like.device), like.requires_grad)
    module.bias = nn.Parameter(bias.to(dtype=like.dtype, device=like.device), like.requires_grad)
    return module.eval()
