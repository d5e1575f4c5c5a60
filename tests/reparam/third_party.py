"""Small modules written here that follow third-party conversion conventions (not their code): YOLOv6's
fuse-then-switch order and QARepVGG's kept post-BN, timm's `fuse()` returning a module or itself and
`reparameterize()` that leaves inner blocks to their own method, RepNeXt's in-place model `fuse()`,
UniRepLKNet's `merge_dilated_branches()`, and timm's BatchNormAct2d / Conv2dSame (imitated under their
module paths, so the handled-subclass rules are tested without timm)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.reparam.algebra import dilate_kernel, identity_kernel, pad_kernel
from bench.reparam.fold import conv_from_kernel_bias, fold_bn, fold_conv_bn


def _conv_of(kernel, bias, like: nn.Conv2d, **geometry) -> nn.Conv2d:
    geometry = {"stride": like.stride, "padding": like.padding, "groups": like.groups, **geometry}
    return conv_from_kernel_bias(kernel, bias, like=like.weight, **geometry)


# --- YOLOv6: ConvModule with forward_fuse; blocks read the fused conv, so fuse_model must run first ----------

class Y6ConvModule(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU() if act else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))

    def forward_fuse(self, x):
        return self.act(self.conv(x))


class Y6RepVGG(nn.Module):
    """3x3 + 1x1 ConvModules + identity BN; `switch_to_deploy` adds `conv.weight` / `conv.bias` of the
    ConvModules, which only exist once YOLOv6's `fuse_model` ran (the bias is None before: TypeError)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.cin, self.act, self.se = cin, nn.ReLU(), nn.Identity()
        self.rbr_identity = nn.BatchNorm2d(cin) if cin == cout and stride == 1 else None
        self.rbr_dense = Y6ConvModule(cin, cout, 3, stride, act=False)
        self.rbr_1x1 = Y6ConvModule(cin, cout, 1, stride, act=False)

    def linear(self, x):
        identity = 0 if self.rbr_identity is None else self.rbr_identity(x)
        return self.rbr_dense(x) + self.rbr_1x1(x) + identity

    def forward(self, x):
        if hasattr(self, "rbr_reparam"):
            return self.act(self.se(self.rbr_reparam(x)))
        return self.act(self.se(self.linear(x)))

    def kernel_bias(self):
        dense, point = self.rbr_dense.conv, self.rbr_1x1.conv
        kernel = dense.weight + F.pad(point.weight, [1, 1, 1, 1])
        bias = dense.bias + point.bias
        if self.rbr_identity is not None:
            k, b = fold_bn(identity_kernel(self.cin, 1, 3, torch.float64), None, self.rbr_identity)
            kernel, bias = kernel + k.to(kernel.dtype), bias + b.to(bias.dtype)
        return kernel, bias

    def switch_to_deploy(self):
        if hasattr(self, "rbr_reparam"):
            return
        self.rbr_reparam = _conv_of(*self.kernel_bias(), like=self.rbr_dense.conv)
        del self.rbr_dense, self.rbr_1x1
        self.rbr_identity = None


class Y6QARepVGG(Y6RepVGG):
    """QARepVGG as YOLOv6 writes it: plain 1x1 conv, Identity skip, optional 3x3 average pooling (V2), and a
    post-BN that `switch_to_deploy` keeps on purpose (for quantization-aware training)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, avg: bool = False) -> None:
        super().__init__(cin, cout, stride)
        same = cin == cout and stride == 1
        self.rbr_1x1 = nn.Conv2d(cin, cout, 1, stride, bias=False)
        self.rbr_identity = nn.Identity() if same else None
        self.rbr_avg = nn.AvgPool2d(3, 1, 1) if same and avg else None
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        if hasattr(self, "rbr_reparam"):
            return self.act(self.bn(self.se(self.rbr_reparam(x))))
        extra = 0 if self.rbr_avg is None else self.rbr_avg(x)
        return self.act(self.bn(self.se(self.linear(x) + extra)))

    def kernel_bias(self):
        dense = self.rbr_dense.conv
        kernel = dense.weight + F.pad(self.rbr_1x1.weight, [1, 1, 1, 1])
        if self.rbr_identity is not None:
            kernel = kernel + identity_kernel(self.cin, 1, 3, kernel.dtype)
        if self.rbr_avg is not None:
            kernel = kernel + identity_kernel(self.cin, 1, 1, kernel.dtype).expand(-1, -1, 3, 3) / 9
        return kernel, dense.bias

    def switch_to_deploy(self):
        if hasattr(self, "rbr_reparam"):
            return
        super().switch_to_deploy()
        self.rbr_avg = None


class Y6BottleRep(nn.Module):
    """Two blocks and a learned-scalar shortcut (not foldable: a ReLU sits between)."""

    def __init__(self, cin: int, cout: int, block=Y6RepVGG) -> None:
        super().__init__()
        self.conv1, self.conv2 = block(cin, cout), block(cout, cout)
        self.shortcut = cin == cout
        self.alpha = nn.Parameter(torch.ones(1))

    def forward(self, x):
        out = self.conv2(self.conv1(x))
        return out + self.alpha * x if self.shortcut else out


class Y6BepC3(nn.Module):
    """CSP stack of BottleReps (a RepBlock) between 1x1 ConvModules."""

    def __init__(self, cin: int, cout: int, block=Y6QARepVGG) -> None:
        super().__init__()
        hidden = cout // 2
        self.cv1, self.cv2 = Y6ConvModule(cin, hidden, 1), Y6ConvModule(cin, hidden, 1)
        self.cv3 = Y6ConvModule(2 * hidden, cout, 1)
        self.m = nn.Sequential(Y6BottleRep(hidden, hidden, block), Y6BottleRep(hidden, hidden, block))

    def forward(self, x):
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), dim=1))


def yolov6_net() -> nn.Module:
    return nn.Sequential(Y6ConvModule(3, 8, 3, 2), Y6RepVGG(8, 8), Y6RepVGG(8, 16, 2), Y6BepC3(16, 16),
                         Y6QARepVGG(16, 16, avg=True), Y6QARepVGG(16, 8, 2))


# --- timm-style reparameterize() that converts only part of a block; inner blocks have their own ----------

class GhostLike(nn.Module):
    """Two depthwise conv+BN branches and a BN skip; `reparameterize()` makes one conv (GhostModuleV3-like)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False), nn.BatchNorm2d(c)) for _ in range(2))
        self.skip = nn.BatchNorm2d(c)
        self.reparam = None

    def forward(self, x):
        if self.reparam is not None:
            return torch.relu(self.reparam(x))
        return torch.relu(sum(b(x) for b in self.branches) + self.skip(x))

    def reparameterize(self):
        if self.reparam is not None:
            return
        pairs = [fold_conv_bn(b[0], b[1]) for b in self.branches]
        c = self.skip.num_features
        pairs.append(fold_bn(identity_kernel(c, c, 3, torch.float64), None, self.skip))
        kernel, bias = sum(k for k, _ in pairs), sum(b for _, b in pairs)
        self.reparam = _conv_of(kernel, bias, like=self.branches[0][0])
        del self.branches, self.skip


class BottleneckLike(nn.Module):
    """Ghost, a 3x3 + 1x1 depthwise pair, ghost; `reparameterize()` folds the depthwise pair only (as timm's
    GhostBottleneckV3 converts its conv_dw and leaves its GhostModuleV3s to their own method)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.ghost1, self.ghost2 = GhostLike(c), GhostLike(c)
        self.dw3 = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False), nn.BatchNorm2d(c))
        self.dw1 = nn.Sequential(nn.Conv2d(c, c, 1, groups=c, bias=False), nn.BatchNorm2d(c))
        self.dw = None

    def forward(self, x):
        y = self.ghost1(x)
        y = self.dw(y) if self.dw is not None else self.dw3(y) + self.dw1(y)
        return self.ghost2(y) + x

    def reparameterize(self):
        if self.dw is not None:
            return
        (k3, b3), (k1, b1) = fold_conv_bn(*self.dw3), fold_conv_bn(*self.dw1)
        self.dw = _conv_of(k3 + pad_kernel(k1, 3), b3 + b1, like=self.dw3[0])
        del self.dw3, self.dw1


# --- fuse(): returns the module to use instead (RepViT, LeViT), itself (SHViT's Residual), or None (RepNeXt) --

class ConvNormLike(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 1, groups: int = 1) -> None:
        super().__init__(nn.Conv2d(cin, cout, k, 1, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout))

    def fuse(self) -> nn.Conv2d:
        return _conv_of(*fold_conv_bn(self[0], self[1]), like=self[0])


class RepVggDwLike(nn.Module):
    """bn(3x3 dw conv+BN + 1x1 dw conv + x); `fuse()` returns one conv."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv, self.conv1, self.bn = ConvNormLike(c, c, 3, c), nn.Conv2d(c, c, 1, groups=c), nn.BatchNorm2d(c)

    def forward(self, x):
        return self.bn(self.conv(x) + self.conv1(x) + x)

    def fuse(self) -> nn.Conv2d:
        conv = self.conv.fuse()
        c = conv.out_channels
        kernel = conv.weight.double() + pad_kernel(self.conv1.weight.double(), 3) + identity_kernel(c, c, 3,
                                                                                                    torch.float64)
        bias = conv.bias.double() + self.conv1.bias.double()
        return _conv_of(*fold_bn(kernel, bias, self.bn), like=conv)


class ResidualLike(nn.Module):
    """x + m(x); `fuse()` folds the skip into m when m is a conv, else returns itself (SHViT's Residual)."""

    def __init__(self, m: nn.Module) -> None:
        super().__init__()
        self.m = m

    def forward(self, x):
        return x + self.m(x)

    def fuse(self) -> nn.Module:
        if isinstance(self.m, ConvNormLike):
            conv = self.m.fuse()
            c = conv.out_channels
            kernel = conv.weight.double() + identity_kernel(c, conv.groups, conv.kernel_size[0], torch.float64)
            return _conv_of(kernel, conv.bias.double(), like=conv)
        return self


class NormLinearLike(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.BatchNorm1d(cin), nn.Linear(cin, cout))

    def fuse(self) -> nn.Linear:
        from bench.reparam.algebra import fuse_bn_linear
        from bench.reparam.fold import bn_scale_shift, linear_weight_bias

        weight, bias = fuse_bn_linear(*bn_scale_shift(self[0]), *linear_weight_bias(self[1]))
        linear = nn.Linear(self[1].in_features, self[1].out_features).to(self[1].weight.dtype)
        with torch.no_grad():
            linear.weight.copy_(weight)
            linear.bias.copy_(bias)
        return linear


class RepViTLike(nn.Module):
    """A RepViT/RepNeXt-shaped net; its own `fuse()` fuses every child with `fuse` in place, returning None."""

    def __init__(self, c: int = 8, classes: int = 5) -> None:
        super().__init__()
        self.stem = ConvNormLike(3, c, 3)
        self.blocks = nn.Sequential(RepVggDwLike(c), ResidualLike(ConvNormLike(c, c, 3, c)),
                                    ResidualLike(nn.Sequential(nn.Conv2d(c, c, 1), nn.ReLU())), RepVggDwLike(c))
        self.head = NormLinearLike(c, classes)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))

    def fuse(self) -> None:
        def walk(net: nn.Module) -> None:
            for name, child in net.named_children():
                if hasattr(child, "fuse"):
                    fused = child.fuse()
                    setattr(net, name, fused)
                    if fused is not child:
                        walk(fused)
                else:
                    walk(child)

        walk(self)


# --- UniRepLKNet: merge_dilated_branches() on the dilated block, reparameterize() on the block around it ----

class DilatedLike(nn.Module):
    """A 7x7 depthwise conv+BN plus 5x5 d1 and 3x3 d2, d3 conv+BN branches (UniRepLKNet's k=7 setting)."""

    SETTING = ((5, 1), (3, 2), (3, 3))

    def __init__(self, c: int, k: int = 7) -> None:
        super().__init__()
        self.lk_origin = nn.Conv2d(c, c, k, 1, k // 2, groups=c, bias=False)
        self.origin_bn = nn.BatchNorm2d(c)
        for k_, d in self.SETTING:
            setattr(self, f"dil_conv_k{k_}_{d}", nn.Conv2d(c, c, k_, 1, (d * (k_ - 1) + 1) // 2, d, c, bias=False))
            setattr(self, f"dil_bn_k{k_}_{d}", nn.BatchNorm2d(c))

    def forward(self, x):
        if not hasattr(self, "origin_bn"):
            return self.lk_origin(x)
        out = self.origin_bn(self.lk_origin(x))
        for k, d in self.SETTING:
            out = out + getattr(self, f"dil_bn_k{k}_{d}")(getattr(self, f"dil_conv_k{k}_{d}")(x))
        return out

    def merge_dilated_branches(self):
        if not hasattr(self, "origin_bn"):
            return
        kernel, bias = fold_conv_bn(self.lk_origin, self.origin_bn)
        size = kernel.shape[-1]
        for k, d in self.SETTING:
            conv, bn = getattr(self, f"dil_conv_k{k}_{d}"), getattr(self, f"dil_bn_k{k}_{d}")
            k_, b_ = fold_conv_bn(conv, bn)
            kernel, bias = kernel + pad_kernel(dilate_kernel(k_, d), size), bias + b_
            delattr(self, f"dil_conv_k{k}_{d}")
            delattr(self, f"dil_bn_k{k}_{d}")
        self.lk_origin = _conv_of(kernel, bias, like=self.lk_origin)
        del self.origin_bn


class UniRepLKBlockLike(nn.Module):
    """x + gamma * pw(bn(dw(x))); `reparameterize()` merges dw's branches and folds bn into dw."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.dwconv, self.norm = DilatedLike(c), nn.BatchNorm2d(c)
        self.pw = nn.Conv2d(c, c, 1)
        self.gamma = nn.Parameter(torch.rand(c) + 0.5)

    def forward(self, x):
        return x + self.gamma.view(1, -1, 1, 1) * self.pw(torch.relu(self.norm(self.dwconv(x))))

    def reparameterize(self):
        self.dwconv.merge_dilated_branches()
        if isinstance(self.norm, nn.BatchNorm2d):
            conv = self.dwconv.lk_origin
            self.dwconv.lk_origin = _conv_of(*fold_bn(conv.weight, conv.bias, self.norm), like=conv)
            self.norm = nn.Identity()


def unireplknet_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), UniRepLKBlockLike(8), DilatedLike(8), nn.BatchNorm2d(8))


# --- timm layers imitated under their module paths --------------------------------------------------------

class BatchNormAct2d(nn.BatchNorm2d):
    """BN, then `drop`, then `act` (timm.layers.norm_act.BatchNormAct2d's structure)."""

    def __init__(self, c: int) -> None:
        super().__init__(c)
        self.drop, self.act = nn.Identity(), nn.ReLU()

    def forward(self, x):
        return self.act(self.drop(super().forward(x)))


class Conv2dSame(nn.Conv2d):
    """TensorFlow 'SAME' padding computed in forward; its `padding` attribute is 0 (timm's Conv2dSame)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1) -> None:
        super().__init__(cin, cout, k, stride, 0, bias=False)

    def forward(self, x):
        ih, iw = x.shape[-2:]
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        ph = max((-(-ih // sh) - 1) * sh + kh - ih, 0)
        pw = max((-(-iw // sw) - 1) * sw + kw - iw, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


BatchNormAct2d.__module__, Conv2dSame.__module__ = "timm.layers.norm_act", "timm.layers.conv2d_same"


class UnknownBNAct(nn.BatchNorm2d):
    """A BatchNorm subclass that adds an activation and is not in `kinds`: it must not fold."""

    def forward(self, x):
        return torch.relu(super().forward(x))


class StdConvLike(nn.Conv2d):
    """Weight standardisation in forward (timm's StdConv2d): not a plain conv, must not fold."""

    def forward(self, x):
        w = self.weight
        w = (w - w.mean(dim=(1, 2, 3), keepdim=True)) / (w.std(dim=(1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)
