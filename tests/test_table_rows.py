"""The t table's one-pass block against per-column gathers."""

from __future__ import annotations

import numpy as np
import pytest

from manylm.inference.table_rows import t_table_block


@pytest.mark.parametrize("n", [0, 1, 1000, 120_001])
@pytest.mark.parametrize("with_lods", [True, False])
def test_block_is_the_gathered_columns(n: int, with_lods: bool) -> None:
    rng = np.random.default_rng(n)
    coefficients = rng.standard_normal((n, 3))
    estimate = coefficients[:, 1]  # a strided view
    standard_error = rng.uniform(0.1, 1, n)
    quantile = np.broadcast_to(1.96, (n,))  # one df: one value, stride 0
    mean, t, p, adjusted, lods = (rng.standard_normal(n) for _ in range(5))
    order = rng.permutation(n)[: n // 2 + 1] if n else np.arange(0)
    block = t_table_block(order, estimate=estimate, standard_error=standard_error,
                          quantile=quantile, mean=mean, t=t, p_value=p, adjusted=adjusted,
                          lods=lods if with_lods else None)
    margin = standard_error * quantile
    expected = [estimate, estimate - margin, estimate + margin, mean, t, p, adjusted]
    if with_lods:
        expected.append(lods)
    assert block.shape == (len(expected), order.shape[0])
    for row, column in zip(block, expected, strict=True):
        np.testing.assert_array_equal(row, column[order])
