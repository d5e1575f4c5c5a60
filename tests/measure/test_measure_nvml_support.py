"""The gpu tests' NVML helper skips, naming why, wherever a quantity is not given (here: no NVML at all),
instead of failing on the way to the skip."""

from __future__ import annotations

import pytest

from bench.measure import nvml_lib
from tests.measure.nvml_support import QUANTITIES, require


@pytest.mark.parametrize("quantity", sorted(QUANTITIES))
def test_a_missing_nvml_is_a_skip_with_its_reason(quantity):
    if nvml_lib.handle_for("cuda:0", warn=False) is not None:
        pytest.skip("NVML answers here: the gpu tests use the helper")
    with pytest.raises(pytest.skip.Exception, match=f"{quantity}: NVML unavailable here"):
        require(quantity, "cuda:0")


def test_query_lets_an_error_that_is_not_nvmls_through():
    """A TypeError (a wrong argument: a bug) used to become an empty column; only NVML's errors do now."""
    def wrong_call(handle):
        raise TypeError("nvmlDeviceGetClockInfo() missing 1 required positional argument: 'type'")

    with pytest.raises(TypeError, match="missing 1 required"):
        nvml_lib.query(wrong_call, None)


def test_query_answers_the_default_for_an_nvml_error():
    pynvml = pytest.importorskip("pynvml")

    def not_supported(handle):
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)

    assert nvml_lib.query(not_supported, None, default="unsupported") == "unsupported"
