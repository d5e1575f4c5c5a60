"""What every re-parameterizable block shares: the eval-mode check and building the deploy conv.

A block declares its branches by implementing `equivalent_kernel_bias()` with the transforms of
`bench.reparam.algebra`; `switch_to_deploy()` is written once, here.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.reparam.algebra import KernelBias
from bench.reparam.fold import conv_from_kernel_bias


class ReparamBlock(nn.Module):
    """Base of the training-form blocks. Subclasses set `deploy_attr` and list `branch_attrs`."""

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
