"""One-pass scans of a block's values and weights for what the fit must treat specially.

NumPy's ``~np.isfinite(w) | (w < 0)`` makes three full temporaries to answer "is any weight
bad?"; these compiled scans read each value once, allocate nothing and stop at the first hit.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

__all__ = ["first_bad_weight", "has_non_finite"]


def first_bad_weight(weights: NDArray[np.floating]) -> tuple[int, int] | None:
    """(row, column) of the first weight that is negative or not finite, in row order."""
    at = _first_bad_weight(weights)
    return None if at < 0 else divmod(int(at), weights.shape[1])


def has_non_finite(values: NDArray[np.floating]) -> bool:
    """Whether any value is NaN or infinite."""
    return bool(_has_non_finite(values))


@numba.njit(cache=True, nogil=True)
def _first_bad_weight(weights):
    n_cols = weights.shape[1]
    for i in range(weights.shape[0]):
        for j in range(n_cols):
            w = weights[i, j]
            if not (w >= 0 and w < np.inf):  # NaN fails both
                return i * n_cols + j
    return -1


@numba.njit(cache=True, nogil=True)
def _has_non_finite(values):
    for i in range(values.shape[0]):
        bad = False
        for j in range(values.shape[1]):
            bad |= not (np.abs(values[i, j]) < np.inf)  # branch-free within a row
        if bad:
            return True
    return False
