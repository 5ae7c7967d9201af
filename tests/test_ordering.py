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


@pytest.mark.parametrize("spread", [1e-15, 1e-12, 1e-9])
def test_values_closer_than_the_position_bits(spread: float) -> None:
    """Values that differ only in the low mantissa bits the packed sort replaces by positions
    (short and very long runs of them), with ties, negatives, infinities and NaN."""
    rng = np.random.default_rng(7)
    n = 100_000
    values = 1 + spread * rng.integers(0, 50, n)  # a few long runs of near-equal values
    values[::3] = -values[::3]
    values[5::11] = rng.uniform(-1, 1, values[5::11].shape[0])
    values[::97] = np.inf
    values[1::97] = -np.inf
    values[2::89] = np.nan
    expected = np.argsort(values, kind="stable")
    np.testing.assert_array_equal(stable_argsort(values), expected)


def test_the_sort_hands_back_its_spare_array() -> None:
    """A long sort (in halves, merged) gives the caller the working array it no longer needs,
    and sorts the same."""
    values = np.random.default_rng(2).uniform(size=250_001)
    spare: list[np.ndarray] = []
    np.testing.assert_array_equal(stable_argsort(values, spare=spare),
                                  np.argsort(values, kind="stable"))
    assert [(a.shape, a.dtype) for a in spare] == [((250_001,), np.dtype(np.float64))]
    assert all(a.flags.writeable and a.flags.c_contiguous for a in spare)
