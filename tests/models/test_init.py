"""randomize_bn_: reproducible, in range, and reaching the zero-initialised DBB 1x1."""

from __future__ import annotations

import torch

from bench.models import create, randomize_bn_
from bench.models.init import BN_RANGES


def _bn_state(model):
    return {k: v.clone() for k, v in model.state_dict().items() if "bn" in k or "identity" in k}


def test_same_generator_seed_same_statistics():
    a = randomize_bn_(create("repvgg_a0", deploy=False), torch.Generator().manual_seed(7))
    b = randomize_bn_(create("repvgg_a0", deploy=False), torch.Generator().manual_seed(7))
    c = randomize_bn_(create("repvgg_a0", deploy=False), torch.Generator().manual_seed(8))
    sa, sb, sc = _bn_state(a), _bn_state(b), _bn_state(c)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if k.endswith("running_mean"))


def test_values_lie_in_their_ranges():
    model = randomize_bn_(create("resnet18"))
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            for name, (low, high) in BN_RANGES.items():
                values = getattr(module, name)
                assert low <= values.min() and values.max() <= high, name
                assert values.std() > 0


def test_zero_initialised_convs_get_weights():
    model = create("dbb_resnet18")
    idconv = model.stage1[0].conv1.dbb_1x1_kxk.idconv1
    assert not idconv.weight.any()
    randomize_bn_(model)
    assert idconv.weight.abs().min() > 0
