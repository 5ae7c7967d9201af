"""Sorting many values fast while keeping R's tie order."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from manylm.parallel import cpu_count, parallel_map

__all__ = ["stable_argsort"]


def stable_argsort(values: NDArray[np.floating]) -> NDArray[np.intp]:
    """Ascending order, ties (and NaN, which go last) in input order, as R's ``order()``.

    NumPy's default argsort is several times faster than its stable one (SIMD sorting), but
    leaves ties in arbitrary order. Ties are rare among p-values, so they are put back in input
    order afterwards, sorting only the elements that take part in a tie. Long vectors are sorted
    in two halves on two cores and merged.
    """
    values = np.asarray(values)
    order = _argsort(values)
    ordered = values[order]
    same = ordered[1:] == ordered[:-1]
    if ordered.dtype.kind == "f":
        nan = np.isnan(ordered)
        same |= nan[1:] & nan[:-1]
    if not same.any():
        return order
    tied = np.zeros(ordered.shape[0], dtype=bool)
    tied[1:] |= same
    tied[:-1] |= same
    positions = np.flatnonzero(tied)
    members = order[positions]
    # Runs of ties are contiguous and in ascending value order: number the runs, then sort the
    # tied elements by (run, input position), which reorders only within each run.
    starts = np.concatenate([[True], ~same[positions[1:] - 1] | (np.diff(positions) > 1)])
    run = np.cumsum(starts)
    order[positions] = members[np.lexsort((members, run))]
    return order


#: From this length on, two halves are sorted on two cores and merged.
_PARALLEL_MIN = 100_000


def _argsort(values: NDArray[Any]) -> NDArray[np.intp]:
    """An ascending order, NaN last (ties in any order)."""
    n = values.shape[0] if values.ndim == 1 else 0
    if n < _PARALLEL_MIN or cpu_count() < 2:
        return np.argsort(values)
    half = n // 2
    left, right = parallel_map(np.argsort, [values[:half], values[half:]])
    order = np.empty(n, dtype=np.intp)
    _merge(values, left, right, half, order)
    return order


@numba.njit(cache=True, nogil=True)
def _merge(values: NDArray[Any], left: NDArray[np.intp], right: NDArray[np.intp], offset: int,
           out: NDArray[np.intp]) -> None:
    """Merge two sorted orders (``right`` indexes ``values[offset:]``), NaN last."""
    i = j = k = 0
    n_left, n_right = left.shape[0], right.shape[0]
    while i < n_left and j < n_right:
        a, b = values[left[i]], values[right[j] + offset]
        if b < a or (a != a and b == b):  # b first only when strictly smaller (or a is NaN)
            out[k] = right[j] + offset
            j += 1
        else:
            out[k] = left[i]
            i += 1
        k += 1
    while i < n_left:
        out[k] = left[i]
        i += 1
        k += 1
    while j < n_right:
        out[k] = right[j] + offset
        j += 1
        k += 1
