"""`convert` handles third-party conventions and says which it used."""

from __future__ import annotations

import torch
from torch import nn

from bench.reparam import RepVGGBlock, convert
from bench.reparam.fold_report import count_batchnorms
from tests.conftest import randomize_


class YoloV6Conv(nn.Module):
    """YOLOv6's `Conv`: conv, bn, act; `forward_fuse` skips the BN once `fuse_model` folded it."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))

    def forward_fuse(self, x):
        return self.act(self.conv(x))


class TimmStyle(nn.Module):
    """A block converting itself with timm's `reparameterize()`: here a conv+BN folded by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 1)
        self.scale = nn.Parameter(torch.randn(8, 1, 1, 1))

    def forward(self, x):
        return self.conv(x) * self.scale.view(1, -1, 1, 1)

    def reparameterize(self) -> None:
        with torch.no_grad():
            self.conv.weight.mul_(self.scale)
            self.conv.bias.mul_(self.scale.flatten())
            self.scale.fill_(1.0)


def test_conventions_are_used_and_named():
    model = nn.Sequential(YoloV6Conv(3, 8), RepVGGBlock(8, 8), TimmStyle(), nn.Conv2d(8, 4, 1), nn.BatchNorm2d(4))
    model = randomize_(model).double().eval()
    conversion = convert(model)
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(conversion.model(x), model(x), rtol=1e-12, atol=1e-12)
    assert count_batchnorms(conversion.model) == 0
    used = conversion.conventions
    assert used["forward_fuse"] == 1 and used["switch_to_deploy"] == 1 and used["reparameterize"] == 1
    assert used["conv->bn"] == 1
    assert "forward_fuse x1" in conversion.describe() and conversion.untraceable == ()
