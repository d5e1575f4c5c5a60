"""`python -m bench models` and `python -m bench verify` through the CLI entry point."""

from __future__ import annotations

import torch

from bench.cli import main
from bench.models import names


def test_models_lists_every_registered_model(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == [
        "name", "family", "params_m", "params_train_m", "macs_g", "paper_params_m", "paper_gmacs",
        "paper_speed_1080ti_b128", "paper_top1",
    ]
    listed = {line.split()[0] for line in lines[1:len(names()) + 1]}
    assert listed == set(names())
    a0 = next(line for line in lines if line.startswith("repvgg_a0 ")).split()
    assert a0[1:] == ["repvgg", "8.309", "9.109", "1.361", "8.30", "1.4", "3256", "72.41"]
    s0 = next(line.split() for line in out.splitlines() if line.startswith("mobileone_s0 "))
    assert s0[1:] == ["mobileone", "2.079", "5.293", "0.275", "2.10", "0.275", "-", "71.40"]


def test_models_subset_as_csv(capsys):
    assert main(["models", "--names", "resnet18, dbb_resnet18", "--csv"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert len(rows) == 3
    assert rows[1].startswith("resnet18,resnet,11.685,11.690,1.814,11.68,1.8,2442,71.16")
    assert rows[2].startswith("dbb_resnet18,dbb,11.685,")


def test_models_unknown_name_fails_with_the_known_list(capsys):
    assert main(["models", "--names", "resnet18,repvgg_a9"]) == 1
    captured = capsys.readouterr()
    assert "model 'repvgg_a9' is unknown" in captured.err and "known: " in captured.err
    assert "resnet18" in captured.out


def test_verify_blocks_and_a_model_pass(capsys):
    assert main(["verify", "--models", "resnet18,repvgg_a0", "--dtypes", "float32"]) == 0
    out = capsys.readouterr().out
    for label in ("ConvBN 3x3", "RepVGGBlock SE s2", "ACBlock 5x5", "DiverseBranchBlock depthwise"):
        assert label in out
    assert "model  resnet18" in out and "FAIL" not in out
    from bench.models.verify import BLOCK_CASES

    total = len(BLOCK_CASES) + 2
    assert out.strip().splitlines()[-1].startswith(f"{total}/{total} passed")
    assert "BN 20->0" in out and "widest deploy kernel" in out


def test_verify_fails_a_deploy_form_that_folded_nothing(capsys, monkeypatch):
    import copy

    import bench.models.equivalence as equivalence

    monkeypatch.setattr(equivalence, "to_deploy", lambda model: copy.deepcopy(model))
    assert main(["verify", "--no-blocks", "--models", "resnet18", "--dtypes", "float64"]) == 1
    assert "the deploy form is unchanged" in capsys.readouterr().out


def test_verify_exits_1_on_a_wrong_deploy_form(capsys, monkeypatch):
    import bench.models.equivalence as equivalence

    real = equivalence.to_deploy

    def broken(model):
        deployed = real(model)
        with torch.no_grad():
            for module in deployed.modules():
                if isinstance(module, torch.nn.Conv2d) and module.bias is not None:
                    module.bias += 0.1
        return deployed

    monkeypatch.setattr(equivalence, "to_deploy", broken)
    assert main(["verify", "--no-blocks", "--models", "resnet18", "--dtypes", "float64"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_verify_rejects_bad_arguments(capsys):
    assert main(["verify", "--dtypes", "float16"]) == 2
    err = capsys.readouterr().err
    assert "dtype 'float16' is unknown (did you mean 'float64', 'float32'?); known: float32, float64" in err
    assert main(["verify", "--models", "resnet9"]) == 2
    assert "model 'resnet9' is unknown" in capsys.readouterr().err
