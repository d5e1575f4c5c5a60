"""The timm parity audit: verdicts, its files, the command's input handling, and (where timm imports) the
audit of two models against timm's own recipe."""

from __future__ import annotations

import importlib.util

import pytest

from bench.cli import main
from bench.parity import document
from bench.parity.audit import COMPLETE, PARTIAL, WRONG, Left, ParityRow, behind, verdict
from bench.parity.command import split

EXACT = Left(1e-15, 0, 0, 0)


@pytest.mark.parametrize("left,reference,expected", [
    (EXACT, Left(1e-15, 54, 0, 54), COMPLETE),
    (Left(1e-15, 3, 0, 0), Left(1e-15, 3, 0, 0), COMPLETE),
    (Left(1e-15, 3, 0, 2), None, PARTIAL),
    (Left(1e-15, 0, 4, 0), None, PARTIAL),
    (Left(1e-15, 5, 0, 0), Left(1e-15, 2, 0, 0), PARTIAL),
    (Left(1e-9, 0, 0, 0), None, WRONG),
    (Left(float("nan"), 0, 0, 0), None, WRONG),
    (Left(None, None, None, None, "conversion failed: TypeError: x"), None, WRONG),
])
def test_verdicts(left, reference, expected):
    assert verdict(left, reference)[0] == expected


def test_an_ill_conditioned_training_form_is_judged_against_its_own_reordering_error():
    """timm's repvgg_d2se moves by 1.2e-6 when only its sums are reordered (channels_last); its deploy form
    (2.7e-6) is exact against that, a wrong fold is not."""
    assert verdict(Left(2.7e-6, 0, 0, 0), reorder_rel_err=1.2e-6) == (COMPLETE, (
        "ill-conditioned training form: reordering its own sums moves its output by 1.2e-06, so exact means "
        "within 1.2e-05"))
    assert verdict(Left(1e-3, 0, 0, 0), reorder_rel_err=1.2e-6)[0] == WRONG


def test_behind_the_reference_is_said():
    left, reference = Left(1e-15, 5, 1, 0), Left(1e-15, 2, 0, 0)
    assert behind(left, reference) and not behind(reference, left)
    assert "5 BatchNorms and 1 blocks left where timm's recipe leaves 2 and 0" in verdict(left, reference)[1]
    assert behind(left, Left(None, None, None, None, "failed")) is None


def _row(model: str, verdict_: str = COMPLETE, **fields) -> ParityRow:
    base = dict(model=model, family="fam", input="1x3x64x64", timm_version="9.9", verdict=verdict_, reason="",
                max_rel_err=1e-15, reorder_rel_err=3e-16, batchnorms_train=4, batchnorms_left=0, multibranch_train=2, multibranch_left=0,
                foldable_pairs_left=0, deploy_recipe="fuse x2", behind_timm=False, timm_verdict=PARTIAL,
                timm_reason="2 foldable pairs left", timm_max_rel_err=2e-15, timm_batchnorms_left=2,
                timm_multibranch_left=0, timm_foldable_pairs_left=2, seconds=1.5)
    return ParityRow(**{**base, **fields})


def test_audit_files_round_trip_and_summarise(tmp_path):
    rows = [_row("a_1"), _row("b_2", WRONG, reason="max_rel_err 0.5 > 1e-12", max_rel_err=0.5, behind_timm=None,
                              timm_max_rel_err=None, timm_batchnorms_left=None)]
    csv, md = document.write(rows, tmp_path, "selection", "'timm:a_1','timm:b_2'")
    assert document.read_rows(csv) == rows
    text = md.read_text()
    assert "timm 9.9" in text and "| exact and complete | 1 | 0 |" in text
    assert "- `b_2`: wrong; max_rel_err 0.5 > 1e-12" in text
    assert "timm's own recipe is not complete for: `a_1` (2 foldable pairs left)" in text


def test_models_split_into_timm_patterns_and_the_rest():
    assert split("repvgg_a0, timm:repvit_*,timm:*") == (["repvit_*", "*"], ["repvgg_a0"])
    assert split("none") == ([], [])


@pytest.mark.skipif(importlib.util.find_spec("timm") is not None, reason="timm is installed here")
def test_timm_audit_without_timm_is_bad_input(capsys):
    assert main(["verify", "--models", "timm:*"]) == 2
    assert "need the 'timm' package" in capsys.readouterr().err


def test_timm_audit_of_two_models_is_exact_and_complete(tmp_path):
    """repvit_m1 (fuse), ghostnetv3_050 (reparameterize leaving inner blocks and 54 BNs to timm's recipe)."""
    pytest.importorskip("timm")
    assert main(["verify", "--models", "timm:repvit_m1,timm:ghostnetv3_050", "--out", str(tmp_path)]) == 0
    rows = document.read_rows(next(tmp_path.glob("parity/timm-*/selection.csv")))
    assert [r.verdict for r in rows] == [COMPLETE, COMPLETE]
    assert all(r.batchnorms_left == 0 and r.multibranch_left == 0 and not r.behind_timm for r in rows)
