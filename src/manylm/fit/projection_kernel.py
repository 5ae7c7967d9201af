"""The dense fit's one read of the data: every row's products with a small basis, and |y|^2.

For a block of rows Y (features x samples) and a basis B (samples x w, w a multiple of 8) the
dense solver needs Y B and the row sums of squares. BLAS runs that skinny product at a fraction
of the machine's speed (it packs Y for a product whose other side is tiny); this compiled loop
reads each row once, keeps two rows' 16 running sums in registers, vectorises along the samples
and adds |y|^2 on the way, and asks for the rows a few steps ahead (:mod:`.prefetch`), so it
runs at about the memory bandwidth (450,000 x 100: ~17 ms on 2 cores, ~26 ms without the
prefetch, against ~65 ms for the BLAS product plus a separate |y|^2 pass).

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
    :data:`BASIS_GROUP`, C-contiguous; ``y`` must have unit stride along samples. With
    ``parallel`` the rows are split over the cores. The fits use :func:`fit_rows`; this gives
    the sums of the same kernel alone, which is how the kernel is tested against NumPy.
    """
    _check_basis(basis_t)
    if y.shape[0] == 0:
        return
    if y.strides[1] != y.itemsize:
        y = np.ascontiguousarray(y)
    if parallel:
        parallel_slices(lambda part: _project(y, basis_t, product, total, part.start,
                                              part.stop), y.shape[0], min_items=2048)
    else:
        _project(y, basis_t, product, total, 0, y.shape[0])


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
    """
    _check_basis(design.basis_t)
    n_rows, n_samples = y.shape
    status = np.empty(n_rows, dtype=np.uint8)
    if n_rows == 0:
        return status
    if y.strides[1] != y.itemsize:
        y = np.ascontiguousarray(y)
    df = float(n_samples - design.rank)

    def run(part: slice) -> None:
        _fit_rows(y, design.basis_t, design.rank, design.to_coefficients, design.columns,
                  design.bound_factor, df, coefficients, residual_variance, mean, status,
                  part.start, part.stop)

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


@numba.njit(cache=True, nogil=True, fastmath=_FAST, boundscheck=False)
def _fit_rows(y, basis_t, rank, to_coefficients, columns, bound_factor, df, coefficients,
              residual_variance, mean, status, start, stop):
    width = basis_t.shape[0]
    n = y.shape[1]
    sums = np.empty((2, width + 1))
    i = start
    while i < stop:
        j = i + 1 if i + 1 < stop else i
        _prefetch_pair(y, i, stop)
        _pair_sums(y, i, j, basis_t, sums)
        for r in range(2):
            row = i + r
            if r == 1 and j == i:
                break
            total = sums[r, width]
            if not np.isfinite(total):
                status[row] = 2
                continue
            row_mean = sums[r, rank] / n
            explained = 0.0
            for m in range(rank):
                explained += sums[r, m] * sums[r, m]
            rss = total - n * row_mean * row_mean - explained
            status[row] = 0 if rss * 1e-9 >= bound_factor * total else 1
            for k in range(rank):
                value = sums[r, rank] * to_coefficients[rank, k]
                for m in range(rank):
                    value += sums[r, m] * to_coefficients[m, k]
                coefficients[row, columns[k]] = value
            mean[row] = row_mean
            residual_variance[row] = rss / df if df > 0 else np.nan
        i += 2
