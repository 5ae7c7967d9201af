"""Sorting features as R's order() does: ascending, ties in input order, NaN last."""

from __future__ import annotations

import numpy as np
import pytest

from manylm.inference.ordering import stable_argsort


@pytest.mark.parametrize("n", [1, 7, 5_000, 250_001])  # the last is sorted in halves, merged
def test_stable_argsort_is_rs_order(n: int) -> None:
    rng = np.random.default_rng(n)
    values = np.round(rng.uniform(size=n), 3)  # many ties
    values[rng.choice(n, n // 50, replace=False)] = np.nan
    values[rng.choice(n, n // 50 + 1, replace=False)] = -0.0  # ties with 0.0 as well
    values[rng.choice(n, n // 50 + 1, replace=False)] = 0.0
    expected = np.argsort(values, kind="stable")  # NaN last, ties in input order
    np.testing.assert_array_equal(stable_argsort(values), expected)


def test_stable_argsort_all_nan_and_one_half_nan() -> None:
    values = np.full(200_000, np.nan)
    np.testing.assert_array_equal(stable_argsort(values), np.arange(values.size))
    values[100_000:] = np.linspace(1, 0, 100_000)
    np.testing.assert_array_equal(stable_argsort(values), np.argsort(values, kind="stable"))
