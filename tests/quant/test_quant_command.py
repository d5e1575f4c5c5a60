"""`bench quant`: bad input refused before anything runs; a checkpoint's weights are the ones measured."""

from __future__ import annotations


import pandas as pd
import pytest
import torch

from bench.cli import main
from tests.tiny_models import TWO_REPVGG_BLOCKS



@pytest.mark.parametrize("argv, message", [
    (["--models", "repvgg_a0", "--checkpoint", "qarepvgg_a0=x.pt"], "not in --models (repvgg_a0)"),
    (["--models", "repvgg_a0", "--checkpoint", "repvgg_a0"], "is not MODEL=PATH"),
    (["--models", "repvgg_a0", "--checkpoint", "repvgg_a0=/no/such.pt"], "'/no/such.pt' is not a file"),
    (["--models", "repvgg_a0", "--weights", "per-layer"],
     "--weights 'per-layer' is unknown (did you mean 'per-tensor', 'per-channel'?); known: per-channel, per-tensor"),
    (["--models", "repvgg_a9"], "repvgg_a9"),
    (["--models", "repvgg_a0", "--quantizer", "tflite"],
     "--quantizer 'tflite' is unknown; known: onnxruntime, openvino"),
])
def test_bad_input_exits_2_before_anything_runs(argv, message, capsys, tmp_path):
    assert main(["quant", *argv, "--out", str(tmp_path / "q")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "q").exists()


def test_a_quantizer_that_is_not_installed_is_named_with_its_install(monkeypatch, capsys):
    from bench.quant import openvino_static

    monkeypatch.setattr(openvino_static, "MODULES", ("openvino", "no_such_nncf_zz"))
    assert main(["quant", "--models", "repvgg_a0", "--quantizer", "openvino"]) == 2
    assert "OpenVINO int8 needs no_such_nncf_zz (pip install openvino nncf)" in capsys.readouterr().err


def test_a_checkpoint_is_measured_and_the_figure_written(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from bench.models import create
    from bench.models.init import randomize_bn_
    from bench.reparam import to_deploy
    from bench.reparam.fold_report import kernel_ranges

    net = tmp_path / "tiny.py"
    net.write_text(TWO_REPVGG_BLOCKS)
    spec = f"{net}:build:width=8"
    torch.manual_seed(7)
    trained = randomize_bn_(create(spec), torch.Generator().manual_seed(7)).eval()
    checkpoint = tmp_path / "tiny.pt"
    torch.save(trained.state_dict(), checkpoint)
    out = tmp_path / "q"
    code = main(["quant", "--models", spec, "--checkpoint", f"{spec}={checkpoint}", "--resolution", "32",
                 "--batch", "4", "--out", str(out)])
    assert code == 0, capsys.readouterr()
    row = pd.read_csv(out / "quant.csv").iloc[0]
    assert row["weights"] == "checkpoint tiny.pt"
    with torch.no_grad():
        widest = max(kernel_ranges(to_deploy(trained)), key=lambda r: r.width)
    assert (row["kernel_low"], row["kernel_high"]) == pytest.approx((widest.low, widest.high))
    assert row["gate_max_rel_err"] < 1e-4 and 5 < row["sqnr_db_train"] < 80 and 5 < row["sqnr_db_deploy"] < 80
    assert (out / "quant.png").is_file() and (out / "quant.svg").is_file()
    assert "Random weights" not in capsys.readouterr().out  # the caveat is for random weights only


@pytest.mark.parametrize("content, message", [("html", "is not a torch checkpoint"), ("keys", "missing")])
def test_a_checkpoint_that_does_not_fit_is_bad_input(tmp_path, capsys, content, message):
    wrong = tmp_path / "wrong.pt"
    if content == "html":
        wrong.write_text("<html>a download page</html>")
    else:
        torch.save({"conv.weight": torch.zeros(1)}, wrong)
    assert main(["quant", "--models", "repvgg_a0", "--checkpoint", f"repvgg_a0={wrong}"]) == 2
    assert message in capsys.readouterr().err
