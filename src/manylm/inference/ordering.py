"""Sorting many values fast while keeping R's tie order."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from manylm.parallel import cpu_count, parallel_map

__all__ = ["stable_argsort"]


def stable_argsort(values: NDArray[np.floating], *,
                   spare: list[NDArray[np.float64]] | None = None) -> NDArray[np.intp]:
    """Ascending order, ties (and NaN, which go last) in input order, as R's ``order()``.

    Long float64 vectors are sorted as 64-bit integers that pack each value's order with its
    position (:func:`_packed_argsort`). Otherwise NumPy's default argsort, several times faster
    than its stable one (SIMD sorting) but leaving ties in arbitrary order, is used, and ties,
    rare among p-values, are put back in input order afterwards, sorting only the elements that
    take part in a tie; long vectors are then sorted in two halves on two cores and merged.

    ``spare``, a list, receives the float64 working arrays of the input's length that the sort
    used and no longer needs, for the caller to reuse (memory used before costs less than new).
    """
    values = np.asarray(values)
    n = values.shape[0] if values.ndim == 1 else 0
    if values.dtype == np.float64 and _PACKED_MIN <= n < 2**_MOST_INDEX_BITS:
        return _packed_argsort(values, spare)
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


#: From this length on, float64 keys are sorted packed with their positions (one integer sort).
_PACKED_MIN = 4096
#: Positions take at most this many low bits of the packed key (the rest keeps the order).
_MOST_INDEX_BITS = 32


def _packed_argsort(values: NDArray[np.floating],
                    spare: list[NDArray[np.float64]] | None = None) -> NDArray[np.intp]:
    """R's order() of float64 values by one sort of 64-bit integers (SIMD: ~4x argsort's speed).

    Each value is mapped to an integer of the same order (sign-flipped IEEE bits; -0 as 0; NaN
    above everything), its lowest b bits replaced by its position (b = bits of n - 1). Sorting
    those integers orders by value, and by position among ties. Values that differ only in
    the b dropped bits (a relative difference below ~2^(b - 52)) come out in position order:
    :func:`_restore_close_values` puts each such run in value order, stably. Long vectors
    are sorted in two halves on two cores, merged on two cores (450,000 p-values: 3.5 ms
    against 4.2 in one sort).
    """
    n = values.shape[0]
    index_bits = max(1, (n - 1).bit_length())
    bits = np.ascontiguousarray(values).view(np.uint64)
    keys = np.empty(n, dtype=np.uint64)
    _pack(bits, index_bits, keys)
    if n >= _PARALLEL_MIN and cpu_count() >= 2:
        # the keys are distinct: halves sorted on two cores merge into the one order
        half = n // 2
        left, right = keys[:half], keys[half:]
        parallel_map(np.ndarray.sort, [left, right])
        # and merge on two cores: the first half of the output from the smallest keys
        taken = _split_point(left, right, half)
        merged = np.empty(n, dtype=np.uint64)
        parallel_map(lambda part: _merge_keys(*part), [
            (left[:taken], right[:half - taken], merged[:half]),
            (left[taken:], right[half - taken:], merged[half:])])
        if spare is not None:
            spare.append(keys.view(np.float64))  # the sort's other array, free again
        keys = merged
    else:
        keys.sort()
    order = keys.view(np.intp)  # the positions written over their keys
    _restore_close_values(bits, keys, index_bits, order)
    return order


@numba.njit(cache=True, nogil=True, inline="always")
def _ordered_bits(bits: np.uint64) -> np.uint64:
    """An integer of the same order as the float64 with these bits (NaN largest, -0 as 0)."""
    magnitude = bits & np.uint64(0x7FFFFFFFFFFFFFFF)
    if magnitude > np.uint64(0x7FF0000000000000):  # NaN
        return np.uint64(0xFFFFFFFFFFFFFFFF)
    if magnitude == np.uint64(0):  # 0 and -0
        return np.uint64(0x8000000000000000)
    if bits >> np.uint64(63):
        return ~bits
    return bits | np.uint64(0x8000000000000000)


@numba.njit(cache=True, nogil=True)
def _pack(bits: NDArray[np.uint64], index_bits: int, keys: NDArray[np.uint64]) -> None:
    low = (np.uint64(1) << np.uint64(index_bits)) - np.uint64(1)
    for i in range(bits.shape[0]):
        keys[i] = (_ordered_bits(bits[i]) & ~low) | np.uint64(i)


def _split_point(left: NDArray[np.uint64], right: NDArray[np.uint64], k: int) -> int:
    """How many of the k smallest keys of two ascending vectors of distinct keys are in
    ``left`` (a binary search: the rest are the first of ``right``)."""
    low, high = max(0, k - right.shape[0]), min(k, left.shape[0])
    while low < high:  # the first i with left[i] > right[k - i - 1]
        i = (low + high) // 2
        if left[i] < right[k - i - 1]:
            low = i + 1
        else:
            high = i
    return low


@numba.njit(cache=True, nogil=True)
def _merge_keys(left: NDArray[np.uint64], right: NDArray[np.uint64],
                out: NDArray[np.uint64]) -> None:
    """Merge two ascending vectors of distinct keys (branch-free while both have keys left:
    which side comes next is unpredictable)."""
    i = j = k = 0
    n_left, n_right = left.shape[0], right.shape[0]
    while i < n_left and j < n_right:
        a = left[i]
        b = right[j]
        first = a < b
        out[k] = a if first else b
        i += first
        j += 1 - first
        k += 1
    k = _append_rest(left, i, out, k)
    _append_rest(right, j, out, k)


@numba.njit(cache=True, nogil=True, inline="always")
def _append_rest(source: NDArray[Any], start: int, out: NDArray[Any], position: int) -> int:
    """Copy ``source[start:]`` to ``out[position:]`` (a merge's tail); where it ends."""
    for i in range(start, source.shape[0]):
        out[position] = source[i]
        position += 1
    return position


@numba.njit(cache=True, nogil=True)
def _restore_close_values(bits: NDArray[np.uint64], keys: NDArray[np.uint64],
                          index_bits: int, order: NDArray[np.intp]) -> None:
    """The positions in sorted ``keys`` into ``order``, each run of keys with equal leading
    bits put in value order (stably). ``order`` may be ``keys`` itself (viewed as intp): a
    key is read before its slot is written, and a run is sorted once all of it is written."""
    low = (np.uint64(1) << np.uint64(index_bits)) - np.uint64(1)
    n = keys.shape[0]
    start = 0
    high = keys[0] & ~low if n else np.uint64(0)
    for i in range(n):
        key = keys[i]
        if key & ~low != high:
            if i - start > 1:
                _sort_run(bits, order, start, i)
            start = i
            high = key & ~low
        order[i] = np.intp(key & low)
    if n - start > 1:
        _sort_run(bits, order, start, n)


@numba.njit(cache=True, nogil=True)
def _sort_run(bits: NDArray[np.uint64], order: NDArray[np.intp], start: int, stop: int) -> None:
    """Positions ``order[start:stop]`` (ascending) stably in the order of their values."""
    if stop - start > 32:  # a stable sort by value
        items = order[start:stop].copy()
        run_keys = np.empty(stop - start, dtype=np.uint64)
        for i in range(stop - start):
            run_keys[i] = _ordered_bits(bits[items[i]])
        order[start:stop] = items[np.argsort(run_keys, kind="mergesort")]
    elif stop - start > 1:  # a short run: insertion sort, stable
        for i in range(start + 1, stop):
            item = order[i]
            key = _ordered_bits(bits[item])
            j = i - 1
            while j >= start and _ordered_bits(bits[order[j]]) > key:
                order[j + 1] = order[j]
                j -= 1
            order[j + 1] = item


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
    k = _append_rest(left, i, out, k)
    while j < n_right:
        out[k] = right[j] + offset
        j += 1
        k += 1
