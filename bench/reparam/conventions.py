"""How third-party modules convert themselves: the conventions `convert` follows, as data.

- `fuse()` (timm's RepViT, LeViT, EfficientViT-M, SHViT, iFormer, EfficientViM, TinyViT; RepViT and RepNeXt):
  returns the module to use instead; RepNeXt's model-level `fuse()` converts in place and returns None.
- `reparameterize()` (timm's RepVGG, MobileOne, FastViT, GhostNetV3, LCNetV2, NextViT; UniRepLKNet's blocks)
- `switch_to_deploy()` (official RepVGG, ACNet, DBB, YOLOv6, RepGhost, this package's blocks)
- `merge_dilated_branches()` (UniRepLKNet's DilatedReparamBlock on its own)

One module is converted by the first of these it has, in that order (timm's `reparameterize_model` order).
YOLOv6's blocks read their ConvModules' fused conv (`_fuse_bn_tensor` takes `conv.weight` and `conv.bias`),
so YOLOv6's own recipe runs first: `fuse_model` folds the BN of every module with `conv`, `bn` and
`forward_fuse` and switches it to `forward_fuse` (`fuse_forward_fuse_modules`).

Third-party methods build their new modules in torch's default dtype and device; they run here with the
module's own dtype and device as the defaults, so a float64 model stays float64 (exact) and a model on a
GPU stays there.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from dataclasses import dataclass
from typing import Iterator, Optional

import torch
from torch import nn

from bench.reparam import kinds
from bench.reparam.fold import fold_conv_bn


@dataclass(frozen=True)
class Convention:
    method: str
    replaces: bool
    """The method returns the module to use in place of the old one (when it returns a module)."""


CONVENTIONS: tuple[Convention, ...] = (
    Convention("fuse", replaces=True),
    Convention("reparameterize", replaces=False),
    Convention("switch_to_deploy", replaces=False),
    Convention("merge_dilated_branches", replaces=False),
)

FORWARD_FUSE = "forward_fuse"
"""YOLOv6's `fuse_model` recipe: a module with `conv`, `bn` and `forward_fuse` gets its BN folded into
`conv`, loses `bn`, and runs `forward_fuse` from then on."""


def _method(module: nn.Module, name: str):
    """The bound method `name` if it takes no argument (a `fuse(self, other)` is some other thing)."""
    method = getattr(module, name, None)
    if not callable(method) or isinstance(method, nn.Module):
        return None
    try:
        inspect.signature(method).bind()
    except (TypeError, ValueError):
        return None
    return method


def convention_of(module: nn.Module) -> Optional[Convention]:
    """The convention by which `module` converts itself, or None."""
    return next((c for c in CONVENTIONS if _method(module, c.method) is not None), None)


@contextlib.contextmanager
def factory_defaults(module: nn.Module) -> Iterator[None]:
    """torch's default dtype and device set to the module's own while third-party code builds modules."""
    tensor = next((t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()), None)
    if tensor is None:
        yield
        return
    saved = torch.get_default_dtype()
    torch.set_default_dtype(tensor.dtype)
    try:
        with torch.device(tensor.device):
            yield
    finally:
        torch.set_default_dtype(saved)


def snapshot(module: nn.Module) -> tuple[type, dict[str, torch.Tensor]]:
    """What a conversion changes: the module's type and its state (copied)."""
    return type(module), {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(module: nn.Module, before: tuple[type, dict[str, torch.Tensor]]) -> bool:
    """Whether `module` differs from its `snapshot`: another type, other state keys, shapes or values."""
    kind, state = before
    now = module.state_dict()
    return type(module) is not kind or now.keys() != state.keys() or any(
        now[k].shape != v.shape or not torch.equal(now[k], v) for k, v in state.items())


def apply(module: nn.Module, path: str = "") -> tuple[nn.Module, Optional[str]]:
    """Convert `module` by its own convention: (the module to use in its place, the convention's method if the
    conversion changed anything, else None). An error keeps its type and gets a note naming the module."""
    convention = convention_of(module)
    if convention is None:
        return module, None
    before = snapshot(module)
    try:
        with factory_defaults(module):
            result = getattr(module, convention.method)()
    except Exception as exc:  # third-party code may raise anything; say where it came from, keep the type
        if hasattr(exc, "add_note"):  # Python >= 3.11
            exc.add_note(f"raised while converting '{path or type(module).__name__}' ({type(module).__name__}) "
                         f"with its {convention.method}()")
        raise
    if convention.replaces and isinstance(result, nn.Module):
        module = result
    return module.eval(), (convention.method if changed(module, before) else None)


def _forward_fusable(module: nn.Module) -> bool:
    conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
    return (callable(getattr(module, FORWARD_FUSE, None)) and conv is not None and bn is not None
            and type(conv) is nn.Conv2d and kinds.is_plain_bn2d(bn) and bn.num_features == conv.out_channels)


@torch.no_grad()
def fuse_forward_fuse_modules(model: nn.Module) -> int:
    """In place, YOLOv6's `fuse_model`: every module with `conv`, `bn` and `forward_fuse` folds its BN into
    `conv` and runs `forward_fuse`. Returns how many modules were fused."""
    fused = 0
    for module in list(model.modules()):
        if _forward_fusable(module):
            kinds.write_weight_bias(module.conv, *fold_conv_bn(module.conv, module.bn))
            delattr(module, "bn")
            module.forward = getattr(module, FORWARD_FUSE)
            fused += 1
    return fused


def would_convert(module: nn.Module) -> bool:
    """Whether converting a copy of `module` by its convention (YOLOv6's order included) would change it:
    the test of a third-party block still in its training form. A conversion that raises means no."""
    if convention_of(module) is None:
        return False
    trial = copy.deepcopy(module)
    try:
        with torch.no_grad():
            fuse_forward_fuse_modules(trial)
            _, changed = apply(trial)
    except Exception:  # a conversion that fails (third-party code raises anything) converts nothing
        return False
    return changed is not None
