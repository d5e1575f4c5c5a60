"""`bench export`: formats, the ONNX Runtime check, node counts, and input errors before anything is written."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

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
    assert "passed  ONNX Runtime (deploy form file) vs PyTorch training form" in text
    assert "passed  PyTorch deploy form vs training form, exported weights" in text
    assert "passed  PyTorch deploy form vs training form, random BatchNorm statistics" in text
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
    assert main(["export", "repvgg_a0", "--format", "state_dict", "--form", form, "--out", str(out), *SMALL]) == 0
    saved = torch.load(out)
    expected = create("repvgg_a0").eval()
    expected = to_deploy(expected) if form == "deploy" else expected
    assert set(saved) == set(expected.state_dict())
    text = capsys.readouterr().out
    assert ("TRAINING form" in text) == (form == "train")
    checked = "passed  PyTorch deploy form vs training form, random BatchNorm statistics" in text
    assert checked == (form == "deploy") and ("no checks: the training form is written as built" in text) != checked


def test_torchscript_export_runs_like_the_deploy_form(tmp_path):
    out = tmp_path / "a0.ts"
    assert main(["export", "repvgg_a0", "--format", "torchscript", "--out", str(out), *SMALL]) == 0
    scripted = torch.jit.load(str(out))
    x = torch.randn(2, 3, 32, 32)
    reference = to_deploy(create("repvgg_a0").eval())
    scripted.load_state_dict(reference.state_dict())
    torch.testing.assert_close(scripted(x), reference(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bad, message", [
    (["--format", "tflite"], "format 'tflite' is unknown; known: onnx, state_dict, torchscript"),
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
    assert main(["export", "repvgg_a0", "--format", "state_dict", "--out", str(out), *SMALL]) == 2
    assert "--force" in capsys.readouterr().err and out.read_bytes() == b"precious"
    assert main(["export", "repvgg_a0", "--format", "state_dict", "--out", str(out), "--force", *SMALL]) == 0
    assert out.read_bytes() != b"precious"


def test_missing_onnx_extra_names_it(tmp_path, monkeypatch, capsys):
    from bench.export import onnx_check

    monkeypatch.setattr(onnx_check, "ONNX_MODULES", ("onnx", "no_such_onnxruntime"))
    out = tmp_path / "x.onnx"
    assert main(["export", "repvgg_a0", "--format", "onnx", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no_such_onnxruntime" in err and "'onnx' extra" in err and not out.exists()


OWN = textwrap.dedent("""
    import sys
    import torch
    from torch import nn


    class DropsABranch(nn.Module):
        '''Two parallel convs summed; its switch_to_deploy keeps only the first: a wrong conversion.'''

        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 3, padding=1)
            self.deployed = False

        def forward(self, x):
            return self.a(x) if self.deployed else self.a(x) + self.b(x)

        def switch_to_deploy(self):
            self.deployed = True
            del self.b


    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            y = self.conv(x)
            return y, y.mean()


    class Exits(nn.Module):
        def forward(self, x):
            sys.exit(0)


    class Raises(nn.Conv2d):
        def forward(self, x):
            raise ValueError("needs a mask input")


    class Huge(nn.Conv2d):
        def forward(self, x):
            return torch.empty(2**46, device=x.device)


    def wrong():
        return DropsABranch()

    def pair():
        return Pair()

    def exits():
        return Exits()

    def huge():
        return Huge(3, 4, 3)

    def raises():
        return Raises(3, 4, 3)

    class Interrupted(nn.Conv2d):
        def forward(self, x):
            raise KeyboardInterrupt

    def interrupted():
        return Interrupted(3, 4, 3)
""")


@pytest.fixture()
def own(tmp_path) -> str:
    path = tmp_path / "own.py"
    path.write_text(OWN)
    return str(path)


def test_a_wrong_conversion_fails_the_export_check_and_the_output_says_what_was_checked(tmp_path, capsys, own):
    """ONNX Runtime agreeing with a wrong PyTorch deploy form is no pass: every check's reference is the
    training form, as in the sweep's gate."""
    pytest.importorskip("onnxruntime")
    out = tmp_path / "wrong.onnx"
    assert main(["export", f"{own}:wrong", "--format", "onnx", "--out", str(out), *SMALL]) == 1
    captured = capsys.readouterr()
    assert "check passed" not in captured.out and "do not ship it" in captured.err and out.is_file()
    assert "FAILED  PyTorch deploy form vs training form, exported weights: deploy output differs" in captured.out
    assert "FAILED  ONNX Runtime (deploy form file) vs PyTorch training form" in captured.out


def _left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix != ".py" and p.name != "__pycache__")


@pytest.mark.parametrize("factory, fmt, message", [
    ("pair", "onnx", "the model returns a tuple, not a tensor"),
    ("exits", "state_dict", "SystemExit(0): the model's code called sys.exit()"),
    ("huge", "state_dict", "does not fit in memory at batch 1"),
    ("raises", "torchscript", "failed while running the training form: ValueError: needs a mask input"),
])
def test_a_model_that_cannot_be_checked_exits_2_and_leaves_no_file(tmp_path, capsys, own, factory, fmt, message):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    out = tmp_path / "out" / f"m.{fmt}"
    assert main(["export", f"{own}:{factory}", "--format", fmt, "--out", str(out), *SMALL]) == 2
    err = capsys.readouterr().err
    assert message in err and "nothing written" in err, err
    assert not out.exists() and (not out.parent.exists() or _left(out.parent) == [])


def test_ctrl_c_during_an_export_exits_130_and_writes_nothing(tmp_path, capsys, own):
    out = tmp_path / "m.ts"
    assert main(["export", f"{own}:interrupted", "--format", "torchscript", "--form", "train", "--out", str(out),
                 *SMALL]) == 130
    assert "bench export: interrupted; nothing written" in capsys.readouterr().err
    assert _left(tmp_path) == []


def test_a_huge_batch_is_refused_before_anything_is_allocated(tmp_path, capsys):
    out = tmp_path / "a0.pt"
    assert main(["export", "repvgg_a0", "--format", "state_dict", "--out", str(out), "--batch", "100000000"]) == 2
    err = capsys.readouterr().err
    assert "--batch" in err and "GiB" in err and not out.exists()


def test_an_out_that_cannot_be_written_exits_2_with_the_reason(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert main(["export", "repvgg_a0", "--format", "state_dict", "--out", str(blocker / "sub" / "a0.pt")]) == 2
    assert f"{blocker} is not a folder" in capsys.readouterr().err
    too_long = tmp_path / ("x" * 300 + ".pt")
    assert main(["export", "repvgg_a0", "--format", "state_dict", "--out", str(too_long), *SMALL]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {too_long}: File name too long" in err and "nothing written" in err
    assert _left(tmp_path) == ["a_file"]


def test_a_read_only_out_folder_exits_2(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    assert main(["export", "repvgg_a0", "--format", "state_dict", "--out", str(folder / "a0.pt")]) == 2
    assert "is not writable" in capsys.readouterr().err


def test_an_out_where_no_file_can_be_made_exits_2(capsys):
    """/proc takes no new files, for root too: the failure to open is the message, not torch's traceback."""
    if not Path("/proc/self").is_dir():
        pytest.skip("no /proc here")
    assert main(["export", "repvgg_a0", "--format", "state_dict", "--form", "train", "--out", "/proc/bench-a0.pt",
                 *SMALL]) == 2
    err = capsys.readouterr().err
    assert "cannot write /proc/bench-a0.pt" in err and "nothing written" in err, err
