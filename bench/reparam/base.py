"""What every re-parameterizable block shares: its geometry, the padding check, the eval-mode check and
building the deploy conv.

A block builds its training-form branches in `_build_branches()` and declares how they fold by
implementing `equivalent_kernel_bias()` with the transforms of `bench.reparam.algebra`; the constructor
(geometry, padding rule, deploy form) and `switch_to_deploy()` are written once, here.
"""

from __future__ import annotations

import functools
import inspect
import operator
from typing import Any, Iterable, Optional

import torch
from torch import Tensor, nn

from bench.reparam.algebra import KernelBias, require_padding_at_least
from bench.reparam.fold import conv_from_kernel_bias


def sum_branches(x: Tensor, branches: Iterable[Optional[nn.Module]]) -> Tensor:
    """The sum of the branches' outputs on `x`, in order, skipping absent (None) branches."""
    return functools.reduce(operator.add, (branch(x) for branch in branches if branch is not None))


class ReparamBlock(nn.Module):
    """Base of the training-form blocks. Subclasses set `deploy_attr`, list `branch_attrs` and build them.

    `padding=None` means kernel_size // 2. `deploy=True` builds the deploy conv alone; otherwise
    `_build_branches(**branch_options)` builds the training form. Padding below `lowest_padding(k)` is
    refused before anything is built.
    """

    deploy_attr: str = "reparam"
    branch_attrs: tuple[str, ...] = ()

    # geometry of the deploy conv, set by subclasses
    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int
    padding: int
    dilation: int = 1
    groups: int = 1
    padding_mode: str = "zeros"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: Optional[int] = None,
        groups: int = 1,
        deploy: bool = False,
        *,
        padding_mode: str = "zeros",
        **branch_options: Any,
    ) -> None:
        super().__init__()
        padding = kernel_size // 2 if padding is None else padding
        require_padding_at_least(type(self).__name__, kernel_size, padding, self.lowest_padding(kernel_size))
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.groups, self.padding_mode = groups, padding_mode
        self._check_geometry()
        try:  # checked in both forms, so a deploy build cannot ignore an option silently
            inspect.signature(self._build_branches).bind(**branch_options)
        except TypeError as exc:
            raise TypeError(f"{type(self).__name__}: {exc}") from None
        if deploy:
            setattr(self, self.deploy_attr, self._make_deploy_conv())
        else:
            self._build_branches(**branch_options)

    @staticmethod
    def lowest_padding(kernel_size: int) -> int:
        """The smallest padding whose branches still fold exactly; most blocks need every branch centred
        on the kxk window, so below k // 2 their 1x1 branch could not match the kxk output."""
        return kernel_size // 2

    @property
    def has_identity(self) -> bool:
        """Whether an identity branch fits: same channels, stride 1, and a kxk output the size of the input."""
        return self.in_channels == self.out_channels and self.stride == 1 and self.padding == self.kernel_size // 2

    def _check_geometry(self) -> None:
        """Refuse a geometry the block cannot fold (beyond the padding rule); checked in both forms."""

    def _build_branches(self, **branch_options: Any) -> None:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        reparam = self._modules.get(self.deploy_attr)
        linear = reparam(x) if reparam is not None else self.linear_forward(x)
        return self.tail(linear)

    def linear_forward(self, x: Tensor) -> Tensor:
        """The training form's linear part: what the deploy conv replaces."""
        raise NotImplementedError

    def tail(self, x: Tensor) -> Tensor:
        """What follows the linear part in both forms (SE, activation); nothing by default."""
        return x

    @property
    def deployed(self) -> bool:
        """True once only the deploy conv is left (also for a block built with deploy=True)."""
        branches = [name for name in self.branch_attrs if name != self.deploy_attr]
        return self.deploy_attr in self._modules and not any(name in self._modules for name in branches)

    def equivalent_kernel_bias(self) -> KernelBias:
        """(K, b) of the single kxk conv equal to the sum of this block's branches in eval mode."""
        raise NotImplementedError

    def _make_deploy_conv(self) -> nn.Conv2d:
        return nn.Conv2d(
            self.in_channels, self.out_channels, self.kernel_size, stride=self.stride,
            padding=self.padding, dilation=self.dilation, groups=self.groups, bias=True,
            padding_mode=self.padding_mode,
        )

    def switch_to_deploy(self) -> None:
        """Replace the branches by one conv, in place. Needs eval mode: the fold uses BN running stats."""
        if self.deployed:
            return
        if self.training:
            raise RuntimeError(
                f"{type(self).__name__} is in training mode; call .eval() before converting "
                "(BatchNorm folds with its running statistics, which only eval mode uses)"
            )
        reference = next(self.parameters())
        with torch.no_grad():
            kernel, bias = self.equivalent_kernel_bias()
        conv = conv_from_kernel_bias(
            kernel, bias, like=reference, stride=self.stride, padding=self.padding,
            dilation=self.dilation, groups=self.groups, padding_mode=self.padding_mode,
        )
        for name in self.branch_attrs:
            if hasattr(self, name):
                delattr(self, name)
        setattr(self, self.deploy_attr, conv)
