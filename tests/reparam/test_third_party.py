"""Third-party conventions, followed by modules written here (`third_party`): each model converts exactly
(float64, random weights and BN statistics), completely (no BN or block left that could fold), and says how."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.reparam import convert, fold_report, fuse_sequential_conv_bn, to_deploy
from bench.reparam.fold_report import count_batchnorms, count_multibranch
from tests.conftest import randomize_
from tests.reparam import third_party as tp


def _exact(model: nn.Module, shape=(2, 3, 16, 14)):
    """(model, conversion), checking deploy == train to 1e-12 in float64."""
    model = randomize_(model, seed=3).double().eval()
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    conversion = convert(model)
    with torch.no_grad():
        reference, out = model(x), conversion.model(x)
    assert out.shape == reference.shape
    assert float((out - reference).abs().max()) <= 1e-12 * float(reference.abs().max())
    return model, conversion


def test_yolov6_fuses_its_conv_modules_before_switching_and_the_qarepvgg_post_bn_folds():
    """YOLOv6's order: fuse_model (conv+BN of each ConvModule) first, then switch_to_deploy; switching first
    raised TypeError. QARepVGG keeps its post-BN for QAT in YOLOv6's deploy form: folded here."""
    model, conversion = _exact(tp.yolov6_net())
    used = conversion.conventions
    assert used == {"forward_fuse": 14, "switch_to_deploy": 8, "conv->bn": 6}
    report = fold_report(model, conversion.model, conversion.recipe)
    assert report.multibranch_before == 8 and report.multibranch_after == 0
    assert report.batchnorms_after == 0 and report.problem() is None
    assert report.recipe == "forward_fuse x14, switch_to_deploy x8, conv->bn x6"


def test_conversion_descends_into_what_a_block_converted():
    """A block whose reparameterize() folds only its own branch (timm's GhostBottleneckV3) leaves its inner
    blocks (GhostModuleV3) to their own method: they are converted too."""
    model, conversion = _exact(nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), tp.BottleneckLike(6)))
    assert conversion.conventions == {"reparameterize": 3}
    report = fold_report(model, conversion.model)
    assert (report.multibranch_before, report.multibranch_after) == (3, 0)
    assert report.batchnorms_after == 0


def test_fuse_returning_a_module_itself_or_nothing():
    """RepViT/LeViT `fuse()` returns the fused module, SHViT's Residual returns itself when it cannot fuse,
    RepNeXt's model-level `fuse()` works in place and returns None."""
    model, conversion = _exact(tp.RepViTLike())
    assert conversion.conventions == {"fuse": 1}
    deployed = conversion.model
    assert isinstance(deployed.blocks[0], nn.Conv2d) and isinstance(deployed.head, nn.Linear)
    assert isinstance(deployed.blocks[2], tp.ResidualLike)
    assert count_batchnorms(deployed) == 0 and count_multibranch(deployed) == 0
    _, blocks = _exact(nn.Sequential(tp.ConvNormLike(3, 4, 3), tp.RepVggDwLike(4), tp.RepVggDwLike(4)))
    assert blocks.conventions == {"fuse": 3} and count_batchnorms(blocks.model) == 0


def test_merge_dilated_branches_and_the_block_around_it():
    model, conversion = _exact(tp.unireplknet_net(), (1, 3, 20, 20))
    assert conversion.conventions == {"reparameterize": 1, "merge_dilated_branches": 1, "conv->bn": 1}
    assert count_batchnorms(conversion.model) == 0
    report = fold_report(model, conversion.model)
    assert (report.multibranch_before, report.multibranch_after) == (3, 0)


def test_fold_report_counts_third_party_blocks_left_unconverted():
    """A partial conversion (the bottleneck's own method only, as a recipe that does not descend) passes no
    longer as complete: its inner blocks are counted."""
    model = randomize_(nn.Sequential(tp.BottleneckLike(6))).eval()
    partial = randomize_(nn.Sequential(tp.BottleneckLike(6))).eval()
    partial[0].reparameterize()
    report = fold_report(model, partial)
    assert (report.multibranch_before, report.multibranch_after) == (3, 2)
    assert "still holds 6 foldable pairs or blocks" in report.problem()


def test_conv_subclasses_and_bn_subclasses_fold_only_when_handled():
    """BatchNormAct2d folds its BN and keeps its activation; Conv2dSame keeps its padding; a BN subclass
    or conv subclass that is not known (an activation, weight standardisation) stays as it is."""
    model = nn.Sequential(
        tp.Conv2dSame(3, 6, 3, 2), tp.BatchNormAct2d(6),
        nn.Conv2d(6, 6, 3, padding=1), tp.UnknownBNAct(6),
        tp.StdConvLike(6, 6, 1), nn.BatchNorm2d(6),
        nn.Conv2d(6, 6, 1), tp.BatchNormAct2d(6),
    )
    _, conversion = _exact(model, (1, 3, 15, 13))
    deployed = conversion.model
    assert conversion.conventions == {"conv->bn": 2, "bn->conv": 1}  # the plain BN folds into the 1x1 after it
    assert type(deployed[0]) is tp.Conv2dSame and isinstance(deployed[1], nn.Sequential)
    assert [type(m) for m in deployed if isinstance(m, nn.BatchNorm2d)] == [tp.UnknownBNAct]


def test_fuse_sequential_conv_bn_folds_only_what_it_can_prove():
    model = randomize_(nn.Sequential(nn.Conv2d(3, 4, 3), tp.BatchNormAct2d(4), nn.Conv2d(4, 4, 1),
                                     tp.UnknownBNAct(4), tp.Conv2dSame(4, 4, 3, 2), nn.BatchNorm2d(4))).double()
    model.eval()
    x = torch.randn(1, 3, 9, 9, dtype=torch.float64)
    with torch.no_grad():
        reference = model(x)
        assert fuse_sequential_conv_bn(model) == 2
        torch.testing.assert_close(model(x), reference, rtol=1e-12, atol=1e-12)
    assert isinstance(model[3], tp.UnknownBNAct)


def test_an_unfoldable_batchnorm_stays():
    """A BN after an activation, before a padded conv, folds nowhere: it is kept, never replaced by
    Identity (RepViT's `replace_batchnorm` would drop it and change the output)."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3, padding=1))
    _, conversion = _exact(model)
    assert count_batchnorms(conversion.model) == 1 and conversion.conventions == {}


@pytest.mark.parametrize("padding", [0, 1])
def test_bn_before_a_conv_folds_only_without_padding(padding: int):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4), nn.Conv2d(4, 6, 1, padding=padding))
    _, conversion = _exact(model)
    assert count_batchnorms(conversion.model) == (0 if padding == 0 else 1)


class _Head(nn.Module):
    """pool -> flatten -> BN1d -> Linear -> BN1d -> Linear: the features are proven 2-d by flatten."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.norm, self.fc = nn.BatchNorm1d(8), nn.Linear(8, 6)
        self.post, self.out = nn.BatchNorm1d(6), nn.Linear(6, 4)

    def forward(self, x):
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(torch.relu(self.conv(x)), 1), 1)
        return self.out(torch.relu(self.post(self.fc(self.norm(x)))))


class _TokenBN(nn.Module):
    """BN1d over (N, C, L) normalises C, not the Linear's features: must not fold."""

    def __init__(self) -> None:
        super().__init__()
        self.norm, self.fc = nn.BatchNorm1d(5), nn.Linear(5, 5)

    def forward(self, x):
        return self.fc(self.norm(x.flatten(2)))


def test_bn1d_and_linear_fold_where_the_input_is_2d_only():
    _, head = _exact(_Head())
    assert head.conventions == {"bn1d->linear": 1, "linear->bn1d": 1}
    assert count_batchnorms(head.model) == 0
    _, tokens = _exact(_TokenBN(), (2, 5, 5, 1))
    assert count_batchnorms(tokens.model) == 1


def test_third_party_conversion_runs_in_the_model_dtype():
    """Third-party fuse() builds modules in torch's default dtype: a float64 model must stay float64."""
    deployed = to_deploy(randomize_(tp.RepViTLike()).double().eval())
    assert {p.dtype for p in deployed.parameters()} == {torch.float64}
