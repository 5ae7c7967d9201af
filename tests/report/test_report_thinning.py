"""Which points the scatter plots draw."""

from __future__ import annotations

import numpy as np
import pytest

from manylm.errors import InputError
from manylm.report.thinning import describe_thinning, extreme_rows, thin_points, thin_ranks


def test_keeps_every_marked_row_and_a_fixed_sample_of_the_rest() -> None:
    keep = np.zeros(100_000, dtype=bool)
    keep[::1000] = True
    rows = thin_points(keep, max_points=5_000, seed=3)
    assert np.all(np.diff(rows) > 0)
    assert set(np.flatnonzero(keep)) <= set(rows.tolist())
    assert rows.size == keep.sum() + 5_000
    np.testing.assert_array_equal(rows, thin_points(keep, max_points=5_000, seed=3))


def test_small_inputs_are_drawn_whole() -> None:
    keep = np.zeros(50, dtype=bool)
    np.testing.assert_array_equal(thin_points(keep, max_points=100), np.arange(50))


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="max_points"):
        thin_points(np.zeros(3, dtype=bool), max_points=-1)
    with pytest.raises(InputError, match="one-dimensional"):
        thin_points(np.zeros((2, 2), dtype=bool))


def test_extremes_and_ranks() -> None:
    values = np.arange(1000.0)
    values[5] = np.nan
    marked = extreme_rows(values, count=10)
    assert marked.sum() == 20 and marked[0] and marked[999] and not marked[5]
    ranks = thin_ranks(1_000_000, keep_first=100, max_points=1_000)
    assert ranks[:100].tolist() == list(range(100))
    assert ranks[-1] == 999_999 and ranks.size <= 1_101
    assert describe_thinning(10, 10) == "All 10 points drawn."
    assert describe_thinning(5, 10, "x") == "5 of 10 points drawn: x and a fixed random sample " \
        "of the rest."
