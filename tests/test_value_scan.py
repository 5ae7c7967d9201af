"""The one-pass scans for bad weights and non-finite values, against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from manylm.fit.value_scan import first_bad_weight, has_non_finite


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf, -np.inf])
def test_first_bad_weight(bad: float) -> None:
    weights = np.ones((50, 7))
    assert first_bad_weight(weights) is None
    weights[31, 4] = bad
    weights[40, 0] = bad
    assert first_bad_weight(weights) == (31, 4)
    assert first_bad_weight(np.asfortranarray(weights)) == (31, 4)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_has_non_finite(value: float) -> None:
    y = np.zeros((20, 9), dtype=np.float32)
    assert not has_non_finite(y)
    y[19, 8] = value
    assert has_non_finite(y)
    assert not has_non_finite(np.zeros((0, 3)))
