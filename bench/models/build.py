"""A model as a sweep cell measures it, in one place for `bench run`, `bench profile` and the invariants.

Weights from `torch.manual_seed(seed)`, BatchNorm statistics random (`randomize_bn_`, so the deploy form
is a real fold, not an identity BN folded), eval mode; the deploy form is `convert` (`to_deploy`) of that
training form, never `create(deploy=True)`, so what is timed is what the correctness gate checked, and the
conversion's recipe is what the rows record as `deploy_recipe`.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.usage import unknown

FORMS: tuple[str, ...] = ("train", "deploy")


def training_form(name: str, seed: int = 0) -> nn.Module:
    """`create(name)` with seeded weights and random BN statistics, in eval mode."""
    from bench.models.init import randomize_bn_
    from bench.models.registry import create

    torch.manual_seed(seed)
    model = create(name, deploy=False)
    if not any(p.is_meta for p in model.parameters()):  # built on the meta device: no values to draw
        randomize_bn_(model, generator=torch.Generator().manual_seed(seed))
    return model.eval()


def deploy_conversion(train: nn.Module):
    """The folded form of a built training form and how it was made (`bench.reparam.convert`), in eval mode."""
    from bench.reparam import convert

    return convert(train)


def deploy_form(train: nn.Module) -> nn.Module:
    """The folded form of a built training form (`bench.reparam.to_deploy`), in eval mode."""
    return deploy_conversion(train).model.eval()


def build_form(name: str, form: str, seed: int = 0) -> nn.Module:
    """`training_form`, folded when `form` is 'deploy'."""
    if form not in FORMS:
        raise unknown("form", form, FORMS)
    train = training_form(name, seed)
    return train if form == "train" else deploy_form(train)
