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
