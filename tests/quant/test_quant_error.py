"""Each int8 error measure against a case computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from bench.quant.error import quant_error, relative_error, sqnr_db, top1_agreement


def test_relative_error_is_the_largest_difference_over_the_largest_reference():
    reference = torch.tensor([[1.0, -2.0], [3.0, 4.0]])
    output = torch.tensor([[1.0, -2.25], [3.0, 3.5]])
    # differences 0, 0.25, 0, 0.5 -> max 0.5; max |reference| = 4 -> 0.125
    assert relative_error(reference, output) == pytest.approx(0.125, abs=1e-15)


def test_sqnr_is_signal_energy_over_noise_energy_in_db():
    reference = torch.tensor([[3.0, 4.0]])
    output = torch.tensor([[3.0, 3.0]])
    # signal 9 + 16 = 25, noise 0 + 1 = 1 -> 10 log10(25) = 13.9794 dB
    assert sqnr_db(reference, output) == pytest.approx(13.979400086720377, abs=1e-12)
    halved = torch.tensor([[3.0, 3.5]])  # noise 0.25: 6.02 dB more, one bit
    assert sqnr_db(reference, halved) - sqnr_db(reference, output) == pytest.approx(20 * math.log10(2), abs=1e-12)
    assert sqnr_db(reference, reference.clone()) == math.inf


def test_top1_agreement_counts_samples_whose_argmax_matches():
    reference = torch.tensor([[1.0, 2.0, 0.0], [5.0, 1.0, 0.0], [0.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    output = torch.tensor([[0.0, 2.0, 1.0], [1.0, 5.0, 0.0], [0.0, 0.0, 1.0], [2.0, 1.0, 0.5]])
    # argmax 1,0,2,0 vs 1,1,2,0: rows 0, 2, 3 agree -> 3/4
    assert top1_agreement(reference, output) == 0.75


def test_top1_agreement_averages_feature_maps_over_space():
    reference = torch.zeros(1, 2, 2, 2)
    reference[0, 1] = torch.tensor([[1.0, 1.0], [1.0, -3.0]])  # channel 1 mean 0, channel 0 mean 0.25 below
    reference[0, 0] = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    output = reference.clone()
    output[0, 1, 1, 1] = 2.0  # channel 1 mean 1.25 > 0.25: the top class changes
    assert top1_agreement(reference, output) == 0.0
    assert top1_agreement(reference, reference) == 1.0


def test_quant_error_bundles_the_three_and_refuses_mismatched_shapes():
    reference = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    output = torch.tensor([[3.0, 3.5], [0.0, 1.0]])
    error = quant_error(reference, output)
    assert error.samples == 2
    assert error.rel_err == pytest.approx(0.25)  # max diff 1 / max |ref| 4
    assert error.sqnr_db == pytest.approx(10 * math.log10(26 / 2.25))  # signal 26, noise 0.25 + 1 + 1
    assert error.top1_agreement == 0.5  # row 0 keeps class 1, row 1 moves from class 0 to 1
    assert error.reference_classes == 2
    with pytest.raises(ValueError, match="shape"):
        quant_error(reference, output[:1])
