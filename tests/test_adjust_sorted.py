"""Adjusted p-values made from p-values already sorted (a table in p order) equal p_adjust."""

from __future__ import annotations

import numpy as np
import pytest

import manylm
from manylm.inference.adjust import adjust_sorted, p_adjust


@pytest.mark.parametrize("method", ["BH", "BY", "holm", "bonferroni", "none", "fdr"])
def test_adjust_sorted_is_p_adjust_in_order(method: str) -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(size=5000) ** 3
    p[::40] = np.nan
    p[7:30] = 0.25  # ties
    order = np.argsort(p, kind="stable")  # NaN last
    np.testing.assert_array_equal(adjust_sorted(p[order], method), p_adjust(p, method)[order])
    assert np.isnan(adjust_sorted(np.full(3, np.nan), method)).all()
    reused = np.full(5000, 7.0)  # into memory given: the same values
    assert adjust_sorted(p[order], method, out=reused) is reused
    np.testing.assert_array_equal(reused, p_adjust(p, method)[order])


@pytest.mark.parametrize("adjust", ["BH", "holm"])
def test_table_in_p_order_has_the_global_adjustment(adjust: str) -> None:
    rng = np.random.default_rng(2)
    y = rng.standard_normal((3000, 8))
    y[:100, 4:] += 2
    y[5, 2] = np.nan
    design = np.column_stack([np.ones(8), np.repeat([0.0, 1.0], 4)])
    result = manylm.ebayes(manylm.lm_fit(y, design))
    table = result.top_table(1, adjust=adjust)  # every row, in p order
    np.testing.assert_array_equal(table["adj_p_value"],
                                  p_adjust(table["p_value"].to_numpy(), adjust))
    top = result.top_table(1, adjust=adjust, number=10)  # the first rows: the same values
    np.testing.assert_array_equal(top["adj_p_value"], table["adj_p_value"][:10])
