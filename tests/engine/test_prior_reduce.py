"""The reduce steps' merges against doing the same on everything at once."""

from __future__ import annotations

import numpy as np
import pytest

from manylm.engine.prior_reduce import TopCandidates, merge_candidates


@pytest.mark.parametrize("n_top", [0, 1, 7, 40, 500])
def test_merged_candidates_are_the_top_of_all_ties_in_row_order(n_top: int) -> None:
    rng = np.random.default_rng(n_top)
    parts = []
    for first in range(0, 400, 100):
        t = rng.choice([1.0, 2.0, 2.5, 3.0], 30) + rng.choice([0.0, 0.25], 30)  # many ties
        rows = first + rng.choice(100, 30, replace=False)
        order = np.lexsort((rows, -t))
        parts.append(TopCandidates(t[order], rng.random(30)[order], rows[order]))
    merged = merge_candidates(parts, n_top)
    t = np.concatenate([p.t for p in parts])
    rows = np.concatenate([p.rows for p in parts])
    stdev = np.concatenate([p.stdev_unscaled for p in parts])
    expected = np.lexsort((rows, -t))[:n_top]
    np.testing.assert_array_equal(merged.rows, rows[expected])
    np.testing.assert_array_equal(merged.t, t[expected])
    np.testing.assert_array_equal(merged.stdev_unscaled, stdev[expected])
