"""A light FLOP counter: `torch.utils.flop_counter.FlopCounterMode`'s formulas at the torch-function level.

Why: FlopCounterMode is a TorchDispatchMode, and the first dispatch mode of a process imports
torch._dynamo (about 1.5 s and 70 MiB RSS on a CPU, in every fresh cell process). A TorchFunctionMode
sees the same calls one level up (F.conv2d, F.linear, torch.matmul, ...), costs milliseconds, and with
the formulas below counts exactly what FlopCounterMode counts (tested on every registered model):

- convolution (conv1d/2d/3d, conv_transpose1d/2d/3d, torch.convolution): 2 * N * C_out * (C_in / groups)
  * prod(kernel) * prod(output spatial); for a transposed convolution prod(input spatial) and the
  weight's (C_in, C_out / groups) (FlopCounterMode's `conv_flop_count`);
- mm, addmm, bmm, baddbmm: 2 * batch * n * k * m; linear: 2 * prod(input.shape[:-1]) * in * out (aten
  lowers it to addmm / mm);
- matmul and @: as aten lowers them: a vector on the right is an mv (not counted, like dot), otherwise
  2 * prod(broadcast batch) * n * k * m with n = 1 for a vector on the left;
- scaled_dot_product_attention: 2 * prod(q.shape[:-2]) * L * S * (E + E_v) (QK^T and the product
  with V; FlopCounterMode's `sdpa_flop_count`).
In-place variants (addmm_, baddbmm_) are not counted, as in FlopCounterMode. Functions whose inner
calls this mode cannot see (a Python-level torch function that dispatches on its own: einsum,
tensordot, multi-head attention, ...) are recorded in `opaque`; `bench.measure.flops.count_macs` then
counts with FlopCounterMode instead, so a count is never silently short.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

Rule = Callable[[Any, tuple, dict], int]
"""flops of one call: (output, args, kwargs) -> int."""


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def conv_flops(x_shape: tuple, w_shape: tuple, out_shape: tuple, transposed: bool) -> int:
    """FlopCounterMode's conv_flop_count (batched shapes)."""
    spatial = (x_shape if transposed else out_shape)[2:]
    return 2 * x_shape[0] * w_shape[0] * w_shape[1] * math.prod(w_shape[2:]) * math.prod(spatial)


def _conv_rule(transposed: bool | int) -> Rule:
    """A rule for a convolution function; `transposed` is a bool or the index of its argument."""

    def rule(out: Any, args: tuple, kwargs: dict) -> int:
        x, w = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "weight")
        is_transposed = transposed if isinstance(transposed, bool) else bool(
            _arg(args, kwargs, transposed, "transposed"))
        x_shape, out_shape = tuple(x.shape), tuple(out.shape)
        if x.dim() == w.dim() - 1:  # unbatched input: aten adds the batch dimension
            x_shape, out_shape = (1, *x_shape), (1, *out_shape)
        return conv_flops(x_shape, tuple(w.shape), out_shape, is_transposed)

    return rule


def _mm_rule(first: int, names: tuple[str, str]) -> Rule:
    """mm, bmm (operands from argument 0), addmm, baddbmm (from 1): 2 * batch * n * k * m."""

    def rule(out: Any, args: tuple, kwargs: dict) -> int:
        a = _arg(args, kwargs, first, names[0])
        b = _arg(args, kwargs, first + 1, names[1])
        batch = a.shape[0] if a.dim() == 3 else 1
        return 2 * batch * a.shape[-2] * a.shape[-1] * b.shape[-1]

    return rule


def matmul_flops(a_shape: tuple, b_shape: tuple) -> int:
    """torch.matmul as aten lowers it (see the module docstring)."""
    if len(b_shape) == 1:
        return 0
    n = a_shape[-2] if len(a_shape) >= 2 else 1
    batch = math.prod(torch.broadcast_shapes(tuple(a_shape[:-2]), tuple(b_shape[:-2])))
    return 2 * batch * n * a_shape[-1] * b_shape[-1]


def _matmul_rule(out: Any, args: tuple, kwargs: dict) -> int:
    a, b = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "other")
    return matmul_flops(tuple(a.shape), tuple(b.shape))


def _linear_rule(out: Any, args: tuple, kwargs: dict) -> int:
    x, w = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "weight")
    return 2 * math.prod(x.shape[:-1]) * w.shape[-1] * w.shape[0]


def _sdpa_rule(out: Any, args: tuple, kwargs: dict) -> int:
    q, k, v = (_arg(args, kwargs, i, name) for i, name in enumerate(("query", "key", "value")))
    return 2 * math.prod(q.shape[:-2]) * q.shape[-2] * k.shape[-2] * (q.shape[-1] + v.shape[-1])


RULES: dict[Any, Rule] = {
    **{fn: _conv_rule(False) for fn in (torch.conv1d, torch.conv2d, torch.conv3d)},
    **{fn: _conv_rule(True) for fn in (torch.conv_transpose1d, torch.conv_transpose2d, torch.conv_transpose3d)},
    torch.convolution: _conv_rule(6),
    F.linear: _linear_rule,
    **{fn: _mm_rule(0, ("input", "mat2")) for fn in (torch.mm, torch.Tensor.mm, torch.bmm, torch.Tensor.bmm)},
    **{fn: _mm_rule(1, ("mat1", "mat2")) for fn in (torch.addmm, torch.Tensor.addmm)},
    **{fn: _mm_rule(1, ("batch1", "batch2")) for fn in (torch.baddbmm, torch.Tensor.baddbmm)},
    **{fn: _matmul_rule for fn in (torch.matmul, torch.Tensor.matmul, torch.linalg.matmul)},
    F.scaled_dot_product_attention: _sdpa_rule,
}
"""Function -> flops rule. Registering a function is one line here and one equality test."""

OPAQUE: frozenset = frozenset({
    torch.einsum, torch.tensordot, torch.inner, torch.chain_matmul, torch.linalg.multi_dot,
    F.multi_head_attention_forward,
})
"""Functions whose matrix work happens in calls this mode does not see (see the module docstring)."""


class MacCounter(TorchFunctionMode):
    """`with MacCounter() as c: model(x)`; then `c.flops` (FlopCounterMode's total) and `c.opaque`."""

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0
        self.opaque: set[str] = set()

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        rule = RULES.get(func)
        if rule is not None:
            self.flops += int(rule(out, args, kwargs))
        elif func in OPAQUE:
            self.opaque.add(getattr(func, "__name__", repr(func)))
        return out
