"""The light MAC counter counts what torch.utils.flop_counter.FlopCounterMode counts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from bench.measure.flops import count_macs
from bench.measure.mac_counter import MacCounter


def counts(fn) -> tuple[int, int]:
    """(ours, FlopCounterMode's) FLOPs of one call of `fn`, under no_grad."""
    ours = MacCounter()
    with ours, torch.no_grad():
        fn()
    assert not ours.opaque
    reference = FlopCounterMode(display=False)
    with reference, torch.no_grad():
        fn()
    return ours.flops, reference.get_total_flops()


def test_every_registered_model_counts_as_flop_counter_mode():
    from bench.models import create, names

    for name in names():
        with torch.device("meta"):  # no memory, no arithmetic: only shapes
            model = create(name, deploy=False).eval()
            x = torch.zeros(1, 3, 32, 32)
        ours, reference = counts(lambda: model(x))
        assert ours == reference > 0, name


@pytest.mark.parametrize(
    "name", ["repvgg_a0", "acnet_resnet18", "dbb_resnet18", "blog_repvgg", "repvgg_d2se", "qarepvgg_a0",
             "mobileone_s0", "mobileone_s4"],
)
def test_deploy_forms_count_as_flop_counter_mode(name):
    from bench.models import create

    with torch.device("meta"):
        model = create(name, deploy=True).eval()
        x = torch.zeros(2, 3, 64, 64)
    ours, reference = counts(lambda: model(x))
    assert ours == reference > 0


X = torch.randn(2, 8, 13, 11)
FUNCTIONAL = {
    "grouped conv": lambda: F.conv2d(X, torch.randn(12, 2, 3, 3), groups=4),
    "strided conv": lambda: F.conv2d(X, torch.randn(6, 8, 3, 3), stride=2, padding=1),
    "dilated conv": lambda: F.conv2d(X, torch.randn(6, 8, 3, 3), dilation=2, padding="same"),
    "depthwise conv": lambda: F.conv2d(X, torch.randn(8, 1, 5, 5), groups=8),
    "reflect-padded conv": lambda: nn.Conv2d(8, 4, 3, padding=1, padding_mode="reflect")(X),
    "unbatched conv": lambda: F.conv2d(X[0], torch.randn(4, 8, 3, 3)),
    "conv1d": lambda: F.conv1d(torch.randn(3, 4, 17), torch.randn(5, 4, 3), stride=2),
    "conv3d": lambda: F.conv3d(torch.randn(1, 2, 5, 6, 7), torch.randn(3, 2, 3, 3, 3)),
    "transposed conv": lambda: F.conv_transpose2d(X, torch.randn(8, 3, 3, 3), stride=2, groups=1),
    "grouped transposed conv": lambda: F.conv_transpose2d(X, torch.randn(8, 3, 3, 3), stride=2, groups=2),
    "torch.convolution": lambda: torch.convolution(X, torch.randn(4, 8, 1, 1), None, [1, 1], [0, 0],
                                                   [1, 1], False, [0, 0], 1),
    "linear with bias": lambda: F.linear(torch.randn(5, 7), torch.randn(3, 7), torch.randn(3)),
    "linear without bias": lambda: F.linear(torch.randn(5, 7), torch.randn(3, 7)),
    "linear on 3-D input": lambda: nn.Linear(7, 3)(torch.randn(2, 5, 7)),
    "linear on a vector": lambda: F.linear(torch.randn(7), torch.randn(3, 7), torch.randn(3)),
    "matmul 3-D": lambda: torch.matmul(torch.randn(4, 3, 5), torch.randn(4, 5, 2)),
    "matmul broadcast": lambda: torch.randn(2, 1, 3, 5) @ torch.randn(6, 5, 4),
    "matmul 3-D by 2-D": lambda: torch.randn(4, 3, 5).matmul(torch.randn(5, 2)),
    "matmul vector by 3-D": lambda: torch.matmul(torch.randn(5), torch.randn(4, 5, 2)),
    "matmul by a vector": lambda: torch.matmul(torch.randn(4, 3, 5), torch.randn(5)),
    "dot": lambda: torch.matmul(torch.randn(5), torch.randn(5)),
    "mm": lambda: torch.mm(torch.randn(3, 4), torch.randn(4, 6)),
    "Tensor.mm": lambda: torch.randn(3, 4).mm(torch.randn(4, 6)),
    "addmm": lambda: torch.addmm(torch.randn(6), torch.randn(3, 4), torch.randn(4, 6)),
    "bmm": lambda: torch.bmm(torch.randn(2, 3, 4), torch.randn(2, 4, 6)),
    "baddbmm": lambda: torch.baddbmm(torch.randn(2, 3, 6), torch.randn(2, 3, 4), torch.randn(2, 4, 6)),
    "in-place addmm_ (not counted)": lambda: torch.zeros(3, 6).addmm_(torch.randn(3, 4), torch.randn(4, 6)),
    "attention": lambda: F.scaled_dot_product_attention(torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8),
                                                        torch.randn(2, 3, 7, 4)),
    "attention 3-D": lambda: F.scaled_dot_product_attention(torch.randn(3, 5, 8), torch.randn(3, 7, 8),
                                                            torch.randn(3, 7, 8)),
}


@pytest.mark.parametrize("case", sorted(FUNCTIONAL))
def test_functional_ops_count_as_flop_counter_mode(case):
    torch.manual_seed(0)
    ours, reference = counts(FUNCTIONAL[case])
    assert ours == reference


def test_functions_it_cannot_see_into_fall_back_to_flop_counter_mode():
    """Multi-head attention's projections run inside a Python function the mode cannot enter."""
    attention = nn.MultiheadAttention(16, 2)
    seq = torch.randn(5, 2, 16)

    class SelfAttention(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return attention(x, x, x)[0]

    ours = MacCounter()
    with ours, torch.no_grad():
        SelfAttention()(seq)
    assert ours.opaque == {"multi_head_attention_forward"}
    reference = FlopCounterMode(display=False)
    with reference, torch.no_grad():
        SelfAttention()(seq)
    assert count_macs(SelfAttention(), seq) == reference.get_total_flops() // 2 > ours.flops // 2


def test_count_macs_does_not_import_dynamo():
    import subprocess
    import sys

    code = ("import sys, torch; from bench.measure.flops import count_macs; "
            "count_macs(torch.nn.Conv2d(3, 4, 3), torch.zeros(1, 3, 8, 8)); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
