"""The gate fails a deploy form that equals its training form only because nothing was folded."""

from __future__ import annotations

from torch import nn

from bench.reparam import fold_report, to_deploy
from bench.models.gate import GateResult


def _model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()).eval()


def test_an_unconverted_deploy_form_fails_even_with_zero_error():
    train = _model()
    gate = GateResult(max_abs_err=0.0, max_rel_err=0.0, tolerance=1e-4, fold=fold_report(train, train))
    assert not gate.passed and "not converted" in gate.describe()
    assert gate.row_fields()["batchnorms_train"] == gate.row_fields()["batchnorms_deploy"] == 1


def test_a_converted_deploy_form_passes_and_records_what_was_removed():
    train = _model()
    gate = GateResult(max_abs_err=0.0, max_rel_err=1e-7, tolerance=1e-4, fold=fold_report(train, to_deploy(train)))
    assert gate.passed
    assert (gate.row_fields()["batchnorms_train"], gate.row_fields()["batchnorms_deploy"]) == (1, 0)
