"""Official-layout checkpoints load with strict=True in both forms; wrong ones get a useful error."""

from __future__ import annotations

import pytest
import torch

from bench.models import CheckpointMismatchError, create, load_checkpoint, randomize_bn_
from bench.models.checkpoint import unwrap_state_dict
from bench.reparam import to_deploy

from tests.models.official_layout import official_state_shapes

A0 = ((2, 4, 14, 1), 0.75, 2.5)


@pytest.fixture(scope="module")
def a0_train():
    torch.manual_seed(0)
    return randomize_bn_(create("repvgg_a0"), torch.Generator().manual_seed(1)).eval()


@pytest.fixture(scope="module")
def example():
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))


def _as_official_file(state, path, wrap):
    """Save like the official scripts: train.py wraps {'state_dict': ...} under DataParallel ('module.')."""
    if wrap:
        state = {"epoch": 120, "arch": "RepVGG-A0", "state_dict": {f"module.{k}": v for k, v in state.items()}}
    torch.save(state, path)
    return path


@pytest.mark.parametrize("wrap", [False, True], ids=["plain", "wrapped"])
def test_train_form_checkpoint_round_trip(a0_train, example, tmp_path, wrap):
    state = a0_train.state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == official_state_shapes(*A0)
    path = _as_official_file(state, tmp_path / "RepVGG-A0-train.pth", wrap)
    loaded = load_checkpoint(create("repvgg_a0"), path).eval()
    assert torch.equal(loaded(example), a0_train(example))


def test_deploy_form_checkpoint_round_trip(a0_train, example, tmp_path):
    state = to_deploy(a0_train).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == official_state_shapes(*A0, deploy=True)
    path = _as_official_file(state, tmp_path / "RepVGG-A0-deploy.pth", wrap=False)
    loaded = load_checkpoint(create("repvgg_a0", deploy=True), path).eval()
    expected = a0_train(example)
    assert (loaded(example) - expected).abs().max() <= 1e-4 * expected.abs().max()


def test_resnet_checkpoint_round_trip_both_forms(example):
    torch.manual_seed(3)
    source = randomize_bn_(create("resnet18")).eval()
    train = load_checkpoint(create("resnet18"), {"model": source.state_dict()}).eval()
    deploy = load_checkpoint(create("resnet18", deploy=True), to_deploy(source).state_dict()).eval()
    assert torch.equal(train(example), source(example))
    assert torch.allclose(deploy(example), source(example), rtol=1e-4, atol=1e-4)


def test_wrong_keys_error_names_first_missing_and_unexpected(a0_train):
    with pytest.raises(CheckpointMismatchError) as excinfo:
        load_checkpoint(create("repvgg_a0"), create("resnet18").state_dict())
    message = str(excinfo.value)
    assert "missing keys (first: stage0.rbr_dense.conv.weight, " in message
    assert "unexpected keys (first: stage0.conv1.conv.weight, " in message


def test_deploy_checkpoint_into_train_model_says_so(a0_train):
    with pytest.raises(CheckpointMismatchError, match="deploy form: build the model with deploy=True"):
        load_checkpoint(create("repvgg_a0"), to_deploy(a0_train).state_dict())
    with pytest.raises(CheckpointMismatchError, match="training form: build the model with deploy=False"):
        load_checkpoint(create("repvgg_a0", deploy=True), a0_train.state_dict())


def test_shape_mismatch_is_reported(a0_train):
    with pytest.raises(CheckpointMismatchError, match=r"shapes do not match .*stage0.rbr_dense.conv.weight: "
                                                       r"checkpoint \(48, 3, 3, 3\) vs model \(64, 3, 3, 3\)"):
        load_checkpoint(create("repvgg_a1"), a0_train.state_dict())


def test_non_strict_ignores_extra_keys_only():
    model = create("resnet18", deploy=True)
    state = dict(model.state_dict(), extra=torch.zeros(1))
    load_checkpoint(model, state, strict=False)
    with pytest.raises(CheckpointMismatchError):
        load_checkpoint(model, state)


def test_unwrap_rejects_a_checkpoint_without_tensors():
    with pytest.raises(ValueError, match="holds no state dict: top-level keys epoch, arch"):
        unwrap_state_dict({"epoch": 3, "arch": "RepVGG-A0"})


def test_numpy_arrays_are_accepted():
    """The official whole_model_convert builds its dict from numpy arrays."""
    model = create("resnet18", deploy=True)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    load_checkpoint(create("resnet18", deploy=True), state)


@pytest.mark.parametrize("content, message", [(b"", "is empty"), (b"<html>not a checkpoint</html>\n",
                                                                   "is not a torch checkpoint"),
                                              (b"\x80", "is not a torch checkpoint.*IndexError"),
                                              (b"\x80\x02X\x05\x00\x00\x00ab", "is not a torch checkpoint"),
                                              (b"\x80\x02X\x02\x00\x00\x00\xff\xfe", "is not a torch checkpoint")])
def test_a_text_or_empty_file_is_a_message_naming_the_path(a0_train, tmp_path, content, message):
    path = tmp_path / "a0.pth"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as info:
        load_checkpoint(a0_train, path)
    assert str(path) in str(info.value)


def _as_timm(key: str) -> str:
    """timm's byobnet RepVGG names, written out by hand from its module tree."""
    for ours, theirs in (("rbr_dense", "conv_kxk"), ("rbr_1x1", "conv_1x1"), ("rbr_identity", "identity"),
                         ("rbr_reparam", "reparam_conv")):
        key = key.replace(ours, theirs)
    if key.startswith("stage0."):
        return "stem." + key[len("stage0."):]
    if key.startswith("linear."):
        return "head.fc." + key[len("linear."):]
    stage, rest = key.split(".", 1)
    return f"stages.{int(stage.removeprefix('stage')) - 1}.{rest}"


@pytest.mark.parametrize("deploy", [False, True], ids=["train", "deploy"])
def test_timm_checkpoint_loads_strictly_after_the_renames(deploy):
    from bench.models import create, load_checkpoint

    source = create("repvgg_a0", num_classes=10, deploy=deploy)
    timm_state = {_as_timm(k): v for k, v in source.state_dict().items()}
    assert any(k.startswith("stages.3.") for k in timm_state) and "head.fc.weight" in timm_state
    target = load_checkpoint(create("repvgg_a0", num_classes=10, deploy=deploy), timm_state, source="timm")
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_timm_checkpoint_with_a_key_the_renames_do_not_cover_fails_strictly():
    from bench.models import create, load_checkpoint
    from bench.models.checkpoint import CheckpointMismatchError

    state = {_as_timm(k): v for k, v in create("repvgg_a0", num_classes=10).state_dict().items()}
    state["stem.attn.fc1.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError, match="unexpected keys"):
        load_checkpoint(create("repvgg_a0", num_classes=10), state, source="timm")


def test_unknown_checkpoint_source_names_the_choices():
    from bench.models import create, load_checkpoint

    with pytest.raises(ValueError, match="source 'keras' is unknown; known: official, timm"):
        load_checkpoint(create("repvgg_a0"), {}, source="keras")
