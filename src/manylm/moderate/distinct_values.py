"""The few distinct values of a long vector (the residual df of features), found in one pass."""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

__all__ = ["broadcast_value", "distinct_values"]


def broadcast_value(values: NDArray[np.floating]) -> float | None:
    """The one value of a vector that is a single value broadcast (stride 0), else None.

    Dense fits keep the residual df as one value broadcast to every feature: the moderation
    treats it as the scalar it is instead of scanning it.
    """
    if values.ndim == 1 and values.shape[0] > 0 and values.strides[0] == 0:
        return float(values[0])
    return None


@numba.njit(cache=True, nogil=True)
def distinct_values(values: NDArray[np.float64], most: int
                    ) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """The distinct values (NaN is one), each value's label and the counts, in one pass.

    Gives up (returns empty arrays) at more than ``most`` distinct values: meant for the few
    residual df that missing values make.
    """
    found = np.empty(most, dtype=np.float64)
    counts = np.zeros(most, dtype=np.int64)
    labels = np.empty(values.shape[0], dtype=np.int64)
    n_found = 0
    last = 0
    for i in range(values.shape[0]):
        value = values[i]
        if n_found == 0 or not _same(found[last], value):  # most runs repeat the last value
            last = -1
            for k in range(n_found):
                if _same(found[k], value):
                    last = k
                    break
            if last < 0:
                if n_found == most:
                    return (np.empty(0, dtype=np.float64), np.empty(0, dtype=np.int64),
                            np.empty(0, dtype=np.int64))
                found[n_found] = value
                last = n_found
                n_found += 1
        labels[i] = last
        counts[last] += 1
    return found[:n_found].copy(), labels, counts[:n_found].copy()


@numba.njit(cache=True, nogil=True, inline="always")
def _same(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)
