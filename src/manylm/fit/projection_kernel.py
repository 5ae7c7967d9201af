"""The dense fit's one read of the data: every row's products with a small basis, and |y|^2.

For a block of rows Y (features x samples) and a basis B (samples x w, w a multiple of 8) the
dense solver needs Y B and the row sums of squares. BLAS runs that skinny product at a fraction
of the machine's speed (it packs Y for a product whose other side is tiny); this compiled loop
reads each row once, keeps two rows' 16 running sums in registers, vectorises along the samples
and adds |y|^2 on the way, and asks for the rows a few steps ahead (:mod:`.prefetch`), so it
runs at about the memory bandwidth (450,000 x 100: ~17 ms on 2 cores, ~26 ms without the
prefetch, against ~65 ms for the BLAS product plus a separate |y|^2 pass).

Matrices stored by column (Fortran order: what a columnar reader such as Parquet's gives without
an interleave, or a pandas frame's values) are read column by column instead (:func:`_column_tile`):
a tile of rows' sums stays in cache while four sample columns at a time are added in, each tile of a
column read once and vectorised along the rows. Either layout reads each value once.

Sums are accumulated in float64 whatever the input type (float32 rows are read as they are).
The order of the additions is left to the compiler (as BLAS leaves it), which changes results
only by rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray

from manylm.fit.prefetch import prefetch_element
from manylm.parallel import parallel_slices

__all__ = ["BASIS_GROUP", "DenseRowFit", "fit_rows", "project_rows"]

#: Row status from :func:`fit_rows`: fitted; fitted but |y|^2 - |Q'y|^2 is too inexact (form
#: the residuals); a missing or infinite value (refit on the observed samples).
FITTED, INEXACT, NOT_FINITE = 0, 1, 2

#: The kernel computes its outputs eight at a time: bases are padded with zero columns to this.
BASIS_GROUP = 8

# Re-association (so the sums vectorise) and fused multiply-add only: NaN and Inf still
# propagate, which the dense solver relies on to find rows with a missing value.
_FAST = {"reassoc", "contract", "nsz"}


def project_rows(y: NDArray[np.floating], basis_t: NDArray[np.float64],
                 product: NDArray[np.floating], total: NDArray[np.floating], *,
                 parallel: bool = False) -> None:
    """``product[i] = basis_t @ y[i]`` and ``total[i] = y[i] @ y[i]`` for every row ``i``.

    ``basis_t`` is the transposed basis, (w, n_samples) with w a multiple of
    :data:`BASIS_GROUP`, C-contiguous; ``y`` is read in place when it has unit stride along
    samples (rows stored together) or along rows (columns stored together), copied otherwise.
    With ``parallel`` the rows are split over the cores. The fits use :func:`fit_rows`; this
    gives the sums of the same kernels alone, which is how they are tested against NumPy.
    """
    _check_basis(basis_t)
    if y.shape[0] == 0:
        return
    columns = _column_layout(y)
    if columns is None and y.strides[1] != y.itemsize:
        y = np.ascontiguousarray(y)

    def run(part: slice) -> None:
        if columns is None:
            _project(y, basis_t, product, total, part.start, part.stop)
        else:
            flat, step = columns
            _project_columns(flat, step, y.shape[1], basis_t, product, total, part.start,
                             part.stop)

    if parallel:
        parallel_slices(run, y.shape[0], min_items=2048)
    else:
        run(slice(0, y.shape[0]))


def _column_layout(y: NDArray[np.floating]) -> tuple[NDArray[np.floating], int] | None:
    """``y`` stored by column (unit stride along rows, more than one row): its values as one
    flat array from ``y[0, 0]`` and the distance between two columns in it; else None.

    The flat view makes every column tile a contiguous slice for the compiled loops (a 2-D
    array that is not C-contiguous would be indexed through both strides).
    """
    n_rows, n_samples = y.shape
    if n_rows < 2 or n_samples == 0 or y.strides[0] != y.itemsize or y.strides[1] % y.itemsize:
        return None
    step = y.strides[1] // y.itemsize
    if step < n_rows:  # overlapping columns: not a layout the kernels read
        return None
    span = (n_samples - 1) * step + n_rows
    flat = np.lib.stride_tricks.as_strided(y, shape=(span,), strides=(y.itemsize,),
                                           writeable=False)
    return flat, step


@dataclass(frozen=True)
class DenseRowFit:
    """What :func:`fit_rows` needs of the design (see :class:`manylm.fit.dense.DenseSolver`).

    basis_t : (w, n) [Qc 1 0...] transposed; rank : the number of effects (the row sums come
        next); to_coefficients : (rank + 1, rank) [centred effects, sum] -> coefficients;
    columns : (rank,) output column of each coefficient; bound_factor : the RSS rounding-error
        bound per unit of |y|^2.
    """

    basis_t: NDArray[np.float64]
    rank: int
    to_coefficients: NDArray[np.float64]
    columns: NDArray[np.int64]
    bound_factor: float


def fit_rows(y: NDArray[np.floating], design: DenseRowFit, coefficients: NDArray[np.floating],
             residual_variance: NDArray[np.floating], mean: NDArray[np.floating], *,
             parallel: bool = False) -> NDArray[np.uint8]:
    """The dense fit of every row of ``y`` in one read, written into the output arrays.

    For each row: the products with the basis and |y|^2 (as :func:`project_rows`), then the
    mean, the coefficients (into ``coefficients[:, design.columns]``), RSS / df. Returns each
    row's status: :data:`FITTED`, :data:`INEXACT` (the one-read RSS fails its rounding bound:
    the caller forms the residuals) or :data:`NOT_FINITE` (the caller refits the row).
    ``y`` is read in place when stored by row or by column (see :func:`project_rows`).
    """
    _check_basis(design.basis_t)
    n_rows, n_samples = y.shape
    status = np.empty(n_rows, dtype=np.uint8)
    if n_rows == 0:
        return status
    columns = _column_layout(y)
    if columns is None and y.strides[1] != y.itemsize:
        y = np.ascontiguousarray(y)
    df = float(n_samples - design.rank)

    def run(part: slice) -> None:
        if columns is None:
            _fit_rows(y, design.basis_t, design.rank, design.to_coefficients, design.columns,
                      design.bound_factor, df, coefficients, residual_variance, mean, status,
                      part.start, part.stop)
        else:
            flat, step = columns
            _fit_columns(flat, step, n_samples, design.basis_t, design.rank,
                         design.to_coefficients, design.columns, design.bound_factor, df,
                         coefficients, residual_variance, mean, status, part.start, part.stop)

    if parallel:
        parallel_slices(run, n_rows, min_items=2048)
    else:
        run(slice(0, n_rows))
    return status


def _check_basis(basis_t: NDArray[np.float64]) -> None:
    if basis_t.shape[0] % BASIS_GROUP or not basis_t.flags.c_contiguous:
        raise ValueError("basis_t must be C-contiguous with a multiple of 8 rows")


#: Rows ahead of the pair being summed whose cache lines are asked for (4 to 8 measure the
#: same; 32 is slower).
PREFETCH_ROWS = 4


@numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _prefetch_pair(y, i, stop):
    """Ask for the cache lines of rows ``i + PREFETCH_ROWS`` and the next, when they exist."""
    ahead = i + PREFETCH_ROWS
    if ahead + 1 < stop:
        n = y.shape[1]
        step = max(1, 64 // y.itemsize)
        for k in range(0, n, step):
            prefetch_element(y, ahead, k)
            prefetch_element(y, ahead + 1, k)
        prefetch_element(y, ahead + 1, n - 1)


# Inlined at numba's IR level, so its callers' fastmath flags apply: both use _FAST.
@numba.njit(cache=True, nogil=True, fastmath=_FAST, boundscheck=False, inline="always")
def _pair_sums(y, i, j, basis_t, sums):
    """sums[0, :w] = basis_t @ y[i], sums[1, :w] = basis_t @ y[j], sums[:, w] = |y_i|^2, |y_j|^2.

    Two rows at a time, their 2 x 8 running sums in registers, vectorised along the samples.
    """
    n = y.shape[1]
    width = basis_t.shape[0]
    for group in range(width // 8):
        o = 8 * group
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = aa = 0.0
        b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = bb = 0.0
        for k in range(n):
            u = np.float64(y[i, k])
            v = np.float64(y[j, k])
            q0 = basis_t[o, k]
            q1 = basis_t[o + 1, k]
            q2 = basis_t[o + 2, k]
            q3 = basis_t[o + 3, k]
            q4 = basis_t[o + 4, k]
            q5 = basis_t[o + 5, k]
            q6 = basis_t[o + 6, k]
            q7 = basis_t[o + 7, k]
            a0 += u * q0
            a1 += u * q1
            a2 += u * q2
            a3 += u * q3
            a4 += u * q4
            a5 += u * q5
            a6 += u * q6
            a7 += u * q7
            b0 += v * q0
            b1 += v * q1
            b2 += v * q2
            b3 += v * q3
            b4 += v * q4
            b5 += v * q5
            b6 += v * q6
            b7 += v * q7
            aa += u * u
            bb += v * v
        sums[0, o] = a0
        sums[0, o + 1] = a1
        sums[0, o + 2] = a2
        sums[0, o + 3] = a3
        sums[0, o + 4] = a4
        sums[0, o + 5] = a5
        sums[0, o + 6] = a6
        sums[0, o + 7] = a7
        sums[1, o] = b0
        sums[1, o + 1] = b1
        sums[1, o + 2] = b2
        sums[1, o + 3] = b3
        sums[1, o + 4] = b4
        sums[1, o + 5] = b5
        sums[1, o + 6] = b6
        sums[1, o + 7] = b7
        if group == 0:
            sums[0, width] = aa
            sums[1, width] = bb


@numba.njit(cache=True, nogil=True, fastmath=_FAST, boundscheck=False)
def _project(y, basis_t, product, total, start, stop):
    width = basis_t.shape[0]
    sums = np.empty((2, width + 1))
    i = start
    while i < stop:
        j = i + 1 if i + 1 < stop else i  # an odd last row is computed twice, stored once
        _prefetch_pair(y, i, stop)
        _pair_sums(y, i, j, basis_t, sums)
        for r in range(2):
            row = i + r
            if r == 1 and j == i:
                break
            for c in range(width):
                product[row, c] = sums[r, c]
            total[row] = sums[r, width]
        i += 2


#: Rows whose sums the kernels keep before finishing their fits together (and, for matrices
#: stored by column, the rows a sweep adds a column into): the tile's sums (w + 1 rows of
#: float64) and its scratch stay in the core's cache (about 100 kB at w = 8).
TILE_ROWS = 1024


# Inlined at numba's IR level (see _pair_sums).
@numba.njit(cache=True, nogil=True, fastmath=_FAST, boundscheck=False, inline="always")
def _finish_tile(sums, first, count, n, rank, to_coefficients, columns, bound_factor, df,
                 coefficients, residual_variance, mean, status, work):
    """The fits of rows ``first:first + count`` from their sums: ``sums[c, i]`` the product of
    row ``first + i`` with basis row ``c`` ([Qc 1 0...]), ``sums[w, i]`` its |y|^2.

    Each step runs along the tile's rows, so it vectorises (one row at a time, the small
    solves cost as much as reading the row). ``work`` is (3, tile) scratch. Rows with a
    missing or infinite value get status :data:`NOT_FINITE` and a NaN mean.
    """
    width = sums.shape[0] - 1
    totals = sums[width]
    sums_of_rows = sums[rank]
    means, rss, value = work[0], work[1], work[2]
    for i in range(count):
        means[i] = sums_of_rows[i] / n
        rss[i] = totals[i] - n * means[i] * means[i]
    for m in range(rank):
        effects = sums[m]
        for i in range(count):
            rss[i] -= effects[i] * effects[i]
    for i in range(count):
        row = first + i
        total = totals[i]
        if np.isfinite(total):
            status[row] = FITTED if rss[i] * 1e-9 >= bound_factor * total else INEXACT
            mean[row] = means[i]
            residual_variance[row] = rss[i] / df if df > 0 else np.nan
        else:
            status[row] = NOT_FINITE
            mean[row] = np.nan
    for k in range(rank):
        to_k = to_coefficients[rank, k]
        for i in range(count):
            value[i] = sums_of_rows[i] * to_k
        for m in range(rank):
            to_k = to_coefficients[m, k]
            effects = sums[m]
            for i in range(count):
                value[i] += effects[i] * to_k
        column = columns[k]
        for i in range(count):
            coefficients[first + i, column] = value[i]


@numba.njit(cache=True, nogil=True, fastmath=_FAST, boundscheck=False)
def _fit_rows(y, basis_t, rank, to_coefficients, columns, bound_factor, df, coefficients,
              residual_variance, mean, status, start, stop):
    width = basis_t.shape[0]
    n = y.shape[1]
    pair = np.empty((2, width + 1))
    sums = np.empty((width + 1, TILE_ROWS))
    work = np.empty((3, TILE_ROWS))
    for first in range(start, stop, TILE_ROWS):
        last = min(stop, first + TILE_ROWS)
        i = first
        while i < last:
            j = i + 1 if i + 1 < last else i  # an odd last row is computed twice
            _prefetch_pair(y, i, stop)
            _pair_sums(y, i, j, basis_t, pair)
            for c in range(width + 1):
                sums[c, i - first] = pair[0, c]
                sums[c, j - first] = pair[1, c]
            i += 2
        _finish_tile(sums, first, last - first, n, rank, to_coefficients, columns,
                     bound_factor, df, coefficients, residual_variance, mean, status, work)


#: Sample columns added in per sweep over a tile's sums (fewer loads and stores of the sums).
_COLUMNS_PER_SWEEP = 4


@numba.njit(cache=True, nogil=True, fastmath=_FAST, boundscheck=False)
def _column_tile(flat, step, n_samples, first, count, basis_t, sums, converted):
    """``sums[c, :count] = basis_t[c] . y[first + i]`` for every basis row ``c``, and
    ``sums[w, :count] = |y[first + i]|^2``, for the ``count`` rows from ``first`` of a matrix
    stored by column (column ``k`` starts at ``flat[k * step]``).

    Four columns at a time are converted to float64 (``converted``, (4, tile)) and added into
    every row of ``sums`` in one sweep, vectorised along the rows.
    """
    width = basis_t.shape[0]
    for c in range(width + 1):
        row_sums = sums[c]
        for i in range(count):
            row_sums[i] = 0.0
    d0, d1, d2, d3 = converted[0], converted[1], converted[2], converted[3]
    k = 0
    while k < n_samples:
        used = min(_COLUMNS_PER_SWEEP, n_samples - k)
        for j in range(_COLUMNS_PER_SWEEP):
            target = converted[j]
            if j < used:
                at = (k + j) * step + first
                column = flat[at:at + count]
                for i in range(count):
                    target[i] = column[i]
            else:
                for i in range(count):
                    target[i] = 0.0
        for c in range(width):
            q0 = basis_t[c, k]
            q1 = basis_t[c, k + 1] if used > 1 else 0.0
            q2 = basis_t[c, k + 2] if used > 2 else 0.0
            q3 = basis_t[c, k + 3] if used > 3 else 0.0
            row_sums = sums[c]
            for i in range(count):
                row_sums[i] += (d0[i] * q0 + d1[i] * q1) + (d2[i] * q2 + d3[i] * q3)
        row_sums = sums[width]
        for i in range(count):
            row_sums[i] += (d0[i] * d0[i] + d1[i] * d1[i]) + (d2[i] * d2[i] + d3[i] * d3[i])
        k += _COLUMNS_PER_SWEEP


@numba.njit(cache=True, nogil=True, fastmath=_FAST, boundscheck=False)
def _project_columns(flat, step, n_samples, basis_t, product, total, start, stop):
    width = basis_t.shape[0]
    sums = np.empty((width + 1, TILE_ROWS))
    converted = np.empty((_COLUMNS_PER_SWEEP, TILE_ROWS))
    for first in range(start, stop, TILE_ROWS):
        count = min(TILE_ROWS, stop - first)
        _column_tile(flat, step, n_samples, first, count, basis_t, sums, converted)
        for i in range(count):
            for c in range(width):
                product[first + i, c] = sums[c, i]
            total[first + i] = sums[width, i]


@numba.njit(cache=True, nogil=True, fastmath=_FAST, boundscheck=False)
def _fit_columns(flat, step, n_samples, basis_t, rank, to_coefficients, columns, bound_factor,
                 df, coefficients, residual_variance, mean, status, start, stop):
    width = basis_t.shape[0]
    sums = np.empty((width + 1, TILE_ROWS))
    converted = np.empty((_COLUMNS_PER_SWEEP, TILE_ROWS))
    work = np.empty((3, TILE_ROWS))
    for first in range(start, stop, TILE_ROWS):
        count = min(TILE_ROWS, stop - first)
        _column_tile(flat, step, n_samples, first, count, basis_t, sums, converted)
        _finish_tile(sums, first, count, n_samples, rank, to_coefficients, columns,
                     bound_factor, df, coefficients, residual_variance, mean, status, work)
