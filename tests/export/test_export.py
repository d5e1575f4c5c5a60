"""`bench export`: formats, the ONNX Runtime check, node counts, and input errors before anything is written."""

from __future__ import annotations

import pytest
import torch

from bench.cli import main
from bench.models import create
from bench.reparam import to_deploy

SMALL = ["--batch", "1", "--resolution", "32"]


def test_onnx_deploy_export_has_no_batchnorm_and_passes_the_check(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "a0.onnx"
    assert main(["export", "repvgg_a0", "--format", "onnx", "--out", str(out), *SMALL]) == 0
    text = capsys.readouterr().out
    assert "deploy graph:" in text and "train  graph:" in text
    deploy_line = next(line for line in text.splitlines() if "deploy graph" in line)
    assert "Conv 22" in deploy_line and "BatchNormalization" not in deploy_line
    assert "BatchNormalization" in next(line for line in text.splitlines() if "train  graph" in line)
    assert "check passed" in text
    import onnx

    ops = [node.op_type for node in onnx.load(str(out)).graph.node]
    assert ops.count("Conv") == 22 and "BatchNormalization" not in ops


def test_onnx_check_fails_for_a_graph_of_another_model(tmp_path):
    """The check compares ONNX Runtime's output with the given module's: a different module must fail."""
    pytest.importorskip("onnxruntime")
    from bench.export import onnx_check

    torch.manual_seed(0)
    x = torch.randn(1, 3, 8, 8)
    exported, other = torch.nn.Conv2d(3, 4, 3).eval(), torch.nn.Conv2d(3, 4, 3).eval()
    graph = onnx_check.export_onnx(exported, x)
    assert graph.count("Conv") == 1
    path = tmp_path / "conv.onnx"
    path.write_bytes(graph.data)
    assert onnx_check.check_onnx(path, exported, x, "fp32").passed
    assert not onnx_check.check_onnx(path, other, x, "fp32").passed


@pytest.mark.parametrize("form", ["deploy", "train"])
def test_state_dict_export_matches_the_form(tmp_path, capsys, form):
    out = tmp_path / "a0.pt"
    assert main(["export", "repvgg_a0", "--format", "state_dict", "--form", form, "--out", str(out)]) == 0
    saved = torch.load(out)
    expected = create("repvgg_a0").eval()
    expected = to_deploy(expected) if form == "deploy" else expected
    assert set(saved) == set(expected.state_dict())
    assert ("TRAINING form" in capsys.readouterr().out) == (form == "train")


def test_torchscript_export_runs_like_the_deploy_form(tmp_path):
    out = tmp_path / "a0.ts"
    assert main(["export", "repvgg_a0", "--format", "torchscript", "--out", str(out), *SMALL]) == 0
    scripted = torch.jit.load(str(out))
    x = torch.randn(2, 3, 32, 32)
    reference = to_deploy(create("repvgg_a0").eval())
    scripted.load_state_dict(reference.state_dict())
    torch.testing.assert_close(scripted(x), reference(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bad, message", [
    (["--format", "tflite"], "format 'tflite' is unknown; valid: onnx, state_dict, torchscript"),
    (["--format", "onnx", "--form", "fused"], "form 'fused' is unknown"),
    (["--format", "onnx", "--precision", "fp64"], "precision 'fp64' is unknown"),
    (["--format", "onnx", "--precision", "bf16"], "cannot be checked with ONNX Runtime"),
    (["--format", "state_dict", "--precision", "int8"], "precision 'int8' is not an export dtype"),
    (["--format", "state_dict", "--batch", "0"], "must be positive"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, bad, message):
    out = tmp_path / "x.out"
    assert main(["export", "repvgg_a0", "--out", str(out), *bad]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_unknown_model_exits_2(tmp_path, capsys):
    assert main(["export", "repvgg_zz", "--format", "state_dict", "--out", str(tmp_path / "x")]) == 2
    assert "unknown" in capsys.readouterr().err


def test_existing_out_is_kept_without_force(tmp_path, capsys):
    out = tmp_path / "keep.pt"
    out.write_bytes(b"precious")
    assert main(["export", "repvgg_a0", "--format", "state_dict", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err and out.read_bytes() == b"precious"
    assert main(["export", "repvgg_a0", "--format", "state_dict", "--out", str(out), "--force"]) == 0
    assert out.read_bytes() != b"precious"


def test_missing_onnx_extra_names_it(tmp_path, monkeypatch, capsys):
    from bench.export import onnx_check

    monkeypatch.setattr(onnx_check, "ONNX_MODULES", ("onnx", "no_such_onnxruntime"))
    out = tmp_path / "x.onnx"
    assert main(["export", "repvgg_a0", "--format", "onnx", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no_such_onnxruntime" in err and "'onnx' extra" in err and not out.exists()
