"""Deterministic CPU regression checks: every registered model's parameter counts, MACs, top-level ATen ops
per forward of each form, and the correctness of its conversion, against results/baselines/cpu_invariants.json.

A failure names the model and what changed; after an intended change regenerate the file with
`python -m bench invariants --write` and commit it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.models import invariants

FILE = Path(__file__).resolve().parents[2] / invariants.EXPECTATIONS
DOC, SETTINGS = invariants.load(FILE)


def test_every_registered_model_has_expectations() -> None:
    differences = invariants.model_set_differences(list(DOC["models"]), invariants.model_names())
    assert not differences, invariants.failure_message(differences, FILE)


@pytest.mark.parametrize("name", sorted(DOC["models"]))
def test_model_invariants_are_unchanged(name: str) -> None:
    if name not in invariants.model_names():
        pytest.fail(invariants.failure_message([f"{name}: in the invariants file but no longer registered"], FILE))
    actual = invariants.measure(name, SETTINGS)
    differences = invariants.record_differences(name, DOC["models"][name], actual)
    assert not differences, invariants.failure_message(differences, FILE)


def test_the_file_checks_what_ci_is_meant_to_check() -> None:
    """Every model has sizes and op counts of both forms; all but the heaviest have a measured conversion."""
    heavy = {n for n, r in DOC["models"].items() if r["params"]["train"] > SETTINGS.heavy_params}
    assert heavy <= {"repvgg_b2", "repvgg_b2g2", "repvgg_b3", "repvgg_b3g2", "repvgg_b3g4", "repvgg_d2se"}
    for name, record in DOC["models"].items():
        assert set(record["params"]) == {"train", "deploy", "converted"}
        assert set(record["ops_per_forward"]) == {"train", "deploy"}
        assert record["ops_per_forward"]["deploy"]["batchnorm"] == 0, name
        assert record["ops_per_forward"]["deploy"]["all"] < record["ops_per_forward"]["train"]["all"], name
        assert ("skipped" in record["equivalence"]) == (name in heavy), name
        if name not in heavy:
            assert record["equivalence"]["max_rel_err"] <= record["equivalence"]["tolerance"], name
