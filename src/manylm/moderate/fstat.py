"""Moderated (or ordinary) F statistics from t statistics (limma's ``classifyTestsF``).

F = |Q' t|^2 / r where Q whitens the correlation of the coefficients and r is the rank of that
correlation matrix (eigenvalues above 1e-8 of the largest), so linearly dependent contrasts are
handled as limma does.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["f_statistic"]


def f_statistic(
    t: NDArray[np.floating], cov_unscaled: NDArray[np.floating]
) -> tuple[NDArray[np.floating], int]:
    """F statistic of each row of ``t`` (features x coefficients) and its numerator df."""
    n_tests = t.shape[1]
    if n_tests == 1:
        return t[:, 0] ** 2, 1
    cov = np.array(cov_unscaled, dtype=np.float64)
    diagonal = np.diag(cov).copy()
    diagonal[diagonal == 0] = 1.0
    np.fill_diagonal(cov, diagonal)
    d = np.sqrt(diagonal)
    correlation = cov / np.outer(d, d)
    values, vectors = np.linalg.eigh(correlation)
    values, vectors = values[::-1], vectors[:, ::-1]
    rank = int(np.sum(values / values[0] > 1e-8))
    q = vectors[:, :rank] / np.sqrt(values[:rank]) / np.sqrt(rank)
    projected = t @ q
    return np.sum(projected**2, axis=1), rank
