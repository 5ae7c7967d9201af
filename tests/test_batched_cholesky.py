"""The batched Cholesky with column dropping, solve and inverse (features last), against NumPy."""

from __future__ import annotations

import numpy as np

from manylm.fit.weighted import _cholesky_solve, _cholesky_with_rank, _triangular_inverse


def test_full_rank_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((9000, 12, 4))
    grams = np.einsum("gni,gnj->gij", x, x)  # (G, p, p)
    lower, accepted = _cholesky_with_rank(np.moveaxis(grams, 0, 2).copy(), np.full(9000, 12),
                                          1e-7)
    assert accepted.all()
    np.testing.assert_allclose(np.moveaxis(lower, 2, 0), np.linalg.cholesky(grams),
                               rtol=1e-10, atol=1e-12)
    rhs = rng.standard_normal((4, 2, 9000))
    solution = _cholesky_solve(lower, rhs)
    expected = np.linalg.solve(grams, np.moveaxis(rhs, 2, 0))
    np.testing.assert_allclose(np.moveaxis(solution, 2, 0), expected, rtol=1e-8, atol=1e-10)
    inverse = _triangular_inverse(lower)
    np.testing.assert_allclose(np.moveaxis(inverse, 2, 0),
                               np.linalg.inv(np.linalg.cholesky(grams)), rtol=1e-8, atol=1e-10)


def test_dependent_and_unobserved_columns_are_dropped() -> None:
    x = np.column_stack([np.ones(6), np.arange(6.0), 2 * np.arange(6.0), np.zeros(6)])
    gram = (x.T @ x)[:, :, None].repeat(3, axis=2)
    observed = np.array([6, 6, 1])  # the last feature: one observation, one column at most
    lower, accepted = _cholesky_with_rank(gram, observed, 1e-7)
    np.testing.assert_array_equal(accepted[:, 0], [True, True, False, False])
    np.testing.assert_array_equal(accepted[:, 2], [True, False, False, False])
    for g in range(3):  # dropped columns: a unit diagonal, nothing else
        for j in np.flatnonzero(~accepted[:, g]):
            assert lower[j, j, g] == 1.0
            assert not np.delete(lower[j, :, g], j).any() and not np.delete(lower[:, j, g], j).any()
