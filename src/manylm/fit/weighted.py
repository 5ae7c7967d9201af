"""Stacked least squares when every feature has its own weights or its own missing samples.

limma's ``lm.series`` falls back to an R loop, one ``lm.wfit`` per feature, as soon as there is
a missing value or a weights matrix. Here the same fits are normal equations solved for all
features in compiled code. Missing values are observations of weight zero, so each feature is
fitted on its own observed samples, with its own residual df; a coefficient that feature cannot
estimate is NaN for it.

In float64 (:func:`_rows_kernel`), each row is read once: its weights, sums, Gram matrix X'WX
and X'Wy come from dot products over the samples, and the small p x p systems of 16 rows at a
time are factored and solved together, one feature per SIMD lane. Nothing features x samples
is written. When residuals are kept, or in float32, the batched path (:func:`_fit_from_sums`)
forms the zero-filled and weighted data, the Gram matrices of every feature from one matrix
product, and the same factorisation over all features at once.

The rank decision mirrors ``dqrdc2``: a column is dropped for a feature when its weighted norm,
after projecting out the columns accepted before it, is small relative to its original norm.
limma's threshold is 1e-7, i.e. 1e-14 on the squared norms the normal equations work with, which
is at the level of their rounding noise: an exactly dependent column can come out at 1e-14 and be
kept by chance. So this path uses 3e-6 (squared: 9e-12), well above the noise. The difference
from limma only shows for a column whose observed part is within 3e-6 of being dependent, where
its estimate would be meaningless anyway. Columns are scaled to unit norm first, and rows are
centred on their weighted mean when the constant is in the column space, so the normal equations
lose little accuracy.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from numpy.typing import NDArray

from manylm.fit.chunk import ChunkFit

__all__ = ["BATCHED_RANK_TOLERANCE", "fit_weighted"]

#: Relative norm below which a column is dependent, for the batched normal equations.
BATCHED_RANK_TOLERANCE = 3e-6


def fit_weighted(
    y: NDArray[np.floating],
    weights: NDArray[np.floating],
    design: NDArray[np.floating],
    *,
    centre_rows: bool,
    keep_residuals: bool = False,
    tol: float = BATCHED_RANK_TOLERANCE,
) -> ChunkFit:
    """Fit each row of ``y`` by weighted least squares with its own row of ``weights``.

    Parameters
    ----------
    y : array of shape (n_features, n_samples)
        May contain NaN (missing); those cells must have weight 0.
    weights : array of shape (n_features, n_samples)
        Non-negative; 0 marks an observation left out.
    design : array of shape (n_samples, n_coefficients)
    centre_rows : bool
        True when the all-ones vector lies in the column space of ``design``.
    """
    if y.dtype == np.float64 and not keep_residuals:
        rows = np.arange(y.shape[0], dtype=np.intp)
        fit = _fit_rows(y, rows, np.ascontiguousarray(weights, dtype=np.float64), np.empty(0),
                        design, centre_rows=centre_rows, tol=tol)
        if fit is not None:
            return fit
    sums = _row_sums(np.ascontiguousarray(y), np.ascontiguousarray(weights, dtype=y.dtype))
    return _fit_from_sums(sums, np.asarray(weights, dtype=y.dtype), design,
                          centre_rows=centre_rows, keep_residuals=keep_residuals, tol=tol)


def fit_observed(
    y: NDArray[np.floating],
    rows: NDArray[np.intp],
    design: NDArray[np.floating],
    *,
    sample_weights: NDArray[np.floating] | None = None,
    centre_rows: bool,
    tol: float = BATCHED_RANK_TOLERANCE,
) -> ChunkFit | None:
    """:func:`fit_weighted` of rows ``rows`` of ``y``, each on its non-missing samples.

    The weights are ``sample_weights`` (or 1) where a value is present and 0 where it is NaN:
    limma's fit of a row with missing values. Rows stored together are read where they lie,
    in the same pass that makes the weights and the sums (no copy of them first); from a
    matrix stored by column the rows are gathered first, as the pass reads a row at a time.
    None when one of them holds an infinite value (the caller reports it).
    """
    n_samples = y.shape[1]
    if y.strides[1] != y.itemsize:
        y, rows = np.ascontiguousarray(y[rows]), np.arange(len(rows))
    base = (np.ones(n_samples) if sample_weights is None
            else np.asarray(sample_weights, dtype=np.float64))
    return _fit_rows(y, np.ascontiguousarray(rows, dtype=np.intp), _NO_WEIGHTS, base, design,
                     centre_rows=centre_rows, tol=tol)


def _fit_rows(y: NDArray[np.floating], rows: NDArray[np.intp], given: NDArray[np.float64],
              base: NDArray[np.float64], design: NDArray[np.floating], *, centre_rows: bool,
              tol: float) -> ChunkFit | None:
    """Rows ``rows`` of ``y`` fitted by :func:`_rows_kernel` (weights ``given``, rows as
    ``y``, or ``base`` where a value is present); None if one holds an infinite value."""
    n_samples, n_coef = design.shape
    scale = np.linalg.norm(design, axis=0)
    scale[scale == 0] = 1.0
    x = np.ascontiguousarray(design / scale, dtype=np.float64)
    m = rows.shape[0]
    coefficients, stdev = np.empty((m, n_coef)), np.empty((m, n_coef))
    residual_variance, df, mean = np.empty(m), np.empty(m), np.empty(m)
    bound_factor = 4 * np.sqrt(n_samples) * (1 + np.sqrt(n_coef)) * np.finfo(np.float64).eps
    infinite = _rows_kernel(y, rows, given, base, x, np.ascontiguousarray(x.T), scale,
                            centre_rows, float(tol), float(bound_factor), coefficients, stdev,
                            residual_variance, df, mean)
    if infinite:
        return None
    return ChunkFit(coefficients=coefficients, stdev_unscaled=stdev,
                    residual_variance=residual_variance, df_residual=df, mean=mean,
                    residuals=None, fitted=None)


#: Rows whose small systems :func:`_rows_kernel` solves together (on SIMD lanes).
_TILE = 16


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz"})
def _rows_kernel(y, rows, given, base, x, x_t, scale, centre_rows, tol, bound_factor,
                 coefficients, stdev, residual_variance, df, mean):
    """Each row's weighted least-squares fit in one compiled pass, keeping nothing per row but
    its results: its weights and sums (:func:`_weights_and_sums`), the Gram matrix, X'w
    and X'wy as dot products over the samples (SIMD), then, for :data:`_TILE` rows at a time,
    the factor, solves and inverse of :func:`_fit_from_sums` on SIMD lanes. The arithmetic of
    that batched path, without its features x samples intermediates (zero-filled data,
    weights, weighted data), which cost more than the fits. Returns the number of infinite
    values (and stops at the row holding one).
    """
    n_samples, n_coef = x.shape
    use_given = given.shape[0] > 0
    threshold = tol * tol
    w = np.empty(n_samples)
    y0 = np.empty(n_samples)
    wx = np.empty((n_coef, n_samples))
    gram = np.empty((n_coef, n_coef, _TILE))
    lower = np.empty((n_coef, n_coef, _TILE))
    inverse = np.empty((n_coef, n_coef, _TILE))
    accepted = np.empty((n_coef, _TILE), dtype=np.bool_)
    reciprocal = np.empty((n_coef, _TILE))
    rhs = np.empty((n_coef, _TILE))
    xw = np.empty((n_coef, _TILE))
    forward = np.empty((n_coef, _TILE))
    centred = np.empty((n_coef, _TILE))
    constant = np.zeros((n_coef, _TILE))
    observed = np.empty(_TILE, dtype=np.int64)
    rank = np.empty(_TILE, dtype=np.int64)
    centre = np.empty(_TILE)
    squares = np.empty(_TILE)
    weight_total = np.empty(_TILE)
    weighted_total = np.empty(_TILE)
    scratch = np.empty(_TILE)
    n_rows = rows.shape[0]
    for r in range(n_rows):
        lane = r % _TILE
        infinite = _weights_and_sums(y, rows[r], use_given, given, base, w, y0, mean, r,
                                     observed, weight_total, weighted_total, squares, lane)
        if infinite:
            return infinite
        c = (weighted_total[lane] / weight_total[lane]
             if (centre_rows and weight_total[lane] > 0) else 0.0)
        centre[lane] = c
        for a in range(n_coef):
            xw_a = 0.0
            xwy_a = 0.0
            for j in range(n_samples):
                product = w[j] * x_t[a, j]
                wx[a, j] = product
                xw_a += product
                xwy_a += product * y0[j]
            xw[a, lane] = xw_a
            rhs[a, lane] = xwy_a - c * xw_a
            for b in range(a + 1):
                entry = 0.0
                for j in range(n_samples):
                    entry += wx[a, j] * x_t[b, j]
                gram[a, b, lane] = entry
                gram[b, a, lane] = entry
        if lane < _TILE - 1 and r < n_rows - 1:
            continue
        # the tile's small systems, on SIMD lanes
        count = lane + 1
        first = r - lane
        _factor_lanes(gram, observed, threshold, lower, accepted, reciprocal, rank, scratch,
                      count)
        for a in range(n_coef):
            for g in range(count):
                rhs[a, g] = rhs[a, g] if accepted[a, g] else 0.0
                xw[a, g] = xw[a, g] if accepted[a, g] else 0.0
        _solve_lanes(lower, reciprocal, rhs, forward, centred, count)
        if centre_rows:
            _solve_lanes(lower, reciprocal, xw, forward, constant, count)
        _inverse_lanes(lower, reciprocal, inverse, count)
        for g in range(count):
            out = first + g
            explained = 0.0
            for a in range(n_coef):
                explained += centred[a, g] * rhs[a, g]
            rss = squares[g] - centre[g] * centre[g] * weight_total[g] - explained
            dof = observed[g] - rank[g]
            if not (rss * 1e-9 >= bound_factor * squares[g]) and dof > 0:
                # RSS from the sums lost its accuracy (a near-perfect fit): the residuals
                _weights_and_sums(y, rows[out], use_given, given, base, w, y0, mean, out,
                                  observed, weight_total, weighted_total, squares, g)
                rss = 0.0
                for j in range(n_samples):
                    if w[j] > 0:
                        fitted = 0.0
                        for a in range(n_coef):
                            fitted += centred[a, g] * x[j, a]
                        residual = y0[j] - centre[g] - fitted
                        rss += w[j] * residual * residual
            df[out] = dof
            residual_variance[out] = rss / dof if dof > 0 else np.nan
            for a in range(n_coef):
                if accepted[a, g]:
                    variance = 0.0
                    for i in range(n_coef):
                        variance += inverse[i, a, g] * inverse[i, a, g]
                    coefficients[out, a] = (centred[a, g] + centre[g] * constant[a, g]) / scale[a]
                    stdev[out, a] = np.sqrt(variance) / scale[a]
                else:
                    coefficients[out, a] = np.nan
                    stdev[out, a] = np.nan
    return 0


@numba.njit(inline="always")
def _weights_and_sums(y, row, use_given, given, base, w, y0, mean, out, observed, weight_total,
                      weighted_total, squares, lane):
    """One row's weights and zero-filled values (``w``, ``y0``), its mean of finite values
    (``mean[out]``), and its observed count, sums of w, w y and w y^2 (at ``lane``).
    Returns the number of infinite values."""
    count = 0
    n_observed = 0
    infinite = 0
    total = 0.0
    w_total = 0.0
    wy_total = 0.0
    wyy = 0.0
    for j in range(y.shape[1]):
        raw = np.float64(y[row, j])
        finite = np.abs(raw) < np.inf
        infinite += np.abs(raw) == np.inf
        value = raw if finite else 0.0
        if use_given:
            weight = given[row, j]
        else:
            weight = base[j] if finite else 0.0
        w[j] = weight
        y0[j] = value
        count += finite
        n_observed += weight != 0
        total += value
        w_total += weight
        wy = weight * value
        wy_total += wy
        wyy += wy * value
    mean[out] = total / count if count > 0 else np.nan
    observed[lane] = n_observed
    weight_total[lane] = w_total
    weighted_total[lane] = wy_total
    squares[lane] = wyy
    return infinite


def _fit_from_sums(sums: _RowSums, weights: NDArray[np.floating],
                   design: NDArray[np.floating], *, centre_rows: bool,
                   keep_residuals: bool = False, tol: float = BATCHED_RANK_TOLERANCE
                   ) -> ChunkFit:
    """The weighted fit given every row's sums and the zero-filled, weighted data."""
    y0, weighted_y = sums.y0, sums.weighted_y
    y = y0  # the type and shape of the data
    n_features, n_samples = y.shape
    n_coef = design.shape[1]
    mean = sums.mean
    n_observed = sums.n_observed

    scale = np.linalg.norm(design, axis=0)
    scale[scale == 0] = 1.0
    x = (design / scale).astype(y.dtype, copy=False)
    # Coefficient-major layout (coefficients first, features last): every step of the batched
    # factorisation below works on contiguous vectors over features.
    pairs = (x[:, :, None] * x[:, None, :]).reshape(n_samples, n_coef * n_coef)
    gram = (pairs.T @ weights.T).reshape(n_coef, n_coef, n_features)
    xw = x.T @ weights.T  # X'w per feature: (p, G)
    xwy = x.T @ weighted_y.T
    weight_total = sums.weight_total
    if centre_rows:
        with np.errstate(invalid="ignore", divide="ignore"):
            centre = np.where(weight_total > 0, sums.weighted_y_total / weight_total, 0.0)
        rhs = np.stack([xwy - centre[None, :] * xw, xw], axis=1)  # (p, 2, G)
    else:
        centre = np.zeros(n_features, dtype=y.dtype)
        rhs = xwy[:, None, :]
    lower, accepted = _cholesky_with_rank(gram, n_observed, tol)
    rhs = np.where(accepted[:, None, :], rhs, 0.0)
    solution = _cholesky_solve(lower, rhs)
    variance_diag = np.sum(_triangular_inverse(lower) ** 2, axis=0)  # diag of (X'WX)^-1

    centred = solution[:, 0, :]  # coefficients of the centred data (scaled columns)
    coef_scaled = centred + centre[None, :] * solution[:, 1, :] if centre_rows else centred
    rank = accepted.sum(axis=0)
    df = (n_observed - rank).astype(np.float64)
    # RSS = sum w (y - c)^2 - b'X'W(y - c); accurate unless the fit explains nearly everything,
    # which the rounding-error bound detects (then the explicit residuals are used).
    total = sums.weighted_squares
    rss = total - centre**2 * weight_total - np.einsum("pg,pg->g", centred, rhs[:, 0, :])
    bound = 4 * np.sqrt(n_samples) * (1 + np.sqrt(n_coef)) * np.finfo(y.dtype).eps * total
    redo = (~(rss * 1e-9 >= bound) & (df > 0)) | keep_residuals
    residuals = None
    if redo.any():
        rows = np.flatnonzero(redo)
        observed = weights[rows] > 0
        fitted_centred = centred[:, rows].T @ x.T
        residuals = np.where(observed, y0[rows] - centre[rows, None] - fitted_centred, 0.0)
        rss[rows] = np.einsum("gn,gn->g", weights[rows] * residuals, residuals)
    with np.errstate(invalid="ignore", divide="ignore"):
        residual_variance = np.where(df > 0, rss / df, np.nan)
    coefficients = np.where(accepted, coef_scaled / scale[:, None], np.nan).T
    stdev = np.where(accepted, np.sqrt(variance_diag) / scale[:, None], np.nan).T
    fitted = full_residuals = None
    if keep_residuals and residuals is not None:
        observed = weights > 0
        fitted = np.where(observed, y0 - residuals, np.nan)
        full_residuals = np.where(observed, residuals, np.nan)
    return ChunkFit(
        coefficients=np.ascontiguousarray(coefficients),
        stdev_unscaled=np.ascontiguousarray(stdev),
        residual_variance=residual_variance,
        df_residual=df,
        mean=mean,
        residuals=full_residuals,
        fitted=fitted,
    )


class _RowSums(NamedTuple):
    y0: NDArray[np.floating]  # y with non-finite values set to 0
    weighted_y: NDArray[np.floating]  # w y0
    mean: NDArray[np.floating]  # of the finite values (limma's Amean), whatever their weight
    n_observed: NDArray[np.int64]  # non-zero weights
    weight_total: NDArray[np.floating]
    weighted_y_total: NDArray[np.floating]  # sum w y0
    weighted_squares: NDArray[np.floating]  # sum w y0^2


def _row_sums(y: NDArray[np.floating], weights: NDArray[np.floating]) -> _RowSums:
    """Every per-row sum the fit needs, and the zero-filled and weighted data, in one pass."""
    y0, weighted_y = np.empty_like(y), np.empty_like(y)
    n = y.shape[0]
    mean, n_observed = np.empty(n, dtype=y.dtype), np.empty(n, dtype=np.int64)
    weight_total = np.empty(n, dtype=y.dtype)
    weighted_y_total, weighted_squares = np.empty(n, dtype=y.dtype), np.empty(n, dtype=y.dtype)
    _sums_kernel(y, weights, y0, weighted_y, mean, n_observed, weight_total, weighted_y_total,
                 weighted_squares)
    return _RowSums(y0, weighted_y, mean, n_observed, weight_total, weighted_y_total,
                    weighted_squares)


#: "No weights matrix" for :func:`_rows_kernel`.
_NO_WEIGHTS = np.empty((0, 0))


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz"})
def _sums_kernel(y, weights, y0, weighted_y, mean, n_observed, weight_total, weighted_y_total,
                 weighted_squares):
    """Every row's sums (:func:`_weights_and_sums`) and its zero-filled and weighted values
    (weights: the matrix ``weights``)."""
    w = np.empty(y.shape[1])
    for r in range(y.shape[0]):
        _weights_and_sums(y, r, True, weights, w, w, y0[r], mean, r, n_observed, weight_total,
                          weighted_y_total, weighted_squares, r)
        for j in range(y.shape[1]):
            weighted_y[r, j] = w[j] * np.float64(y0[r, j])


def _cholesky_with_rank(
    gram: NDArray[np.floating], n_observed: NDArray[np.int_], tol: float
) -> tuple[NDArray[np.floating], NDArray[np.bool_]]:
    """Batched Cholesky of ``gram`` (p, p, G) that drops columns dependent on earlier ones.

    Returns the lower factor (p, p, G), with a decoupled unit row and column for each dropped
    column so that it stays invertible, and the mask (p, G) of accepted columns. Column j is
    kept when its residual diagonal exceeds tol^2 of its original one, the feature has more
    observations than columns kept so far, and the diagonal is positive. One compiled loop
    over the features (each factor is p x p); the engines run blocks of features on the cores.
    """
    n_coef, _, n_features = gram.shape
    lower = np.empty_like(gram)
    accepted = np.empty((n_coef, n_features), dtype=bool)
    observed = np.ascontiguousarray(n_observed, dtype=np.int64)
    _cholesky_kernel(gram, observed, float(tol), lower, accepted)
    return lower, accepted


def _cholesky_solve(lower: NDArray[np.floating], rhs: NDArray[np.floating]) -> NDArray[np.floating]:
    """Solve L L' b = rhs for every feature; ``rhs`` has shape (p, k, G)."""
    solution = np.empty_like(rhs)
    _solve_kernel(lower, rhs, solution)
    return solution


def _triangular_inverse(lower: NDArray[np.floating]) -> NDArray[np.floating]:
    """Inverse of each lower-triangular factor (p, p, G), by forward substitution."""
    inverse = np.empty_like(lower)
    _inverse_kernel(lower, inverse)
    return inverse


@numba.njit(cache=True, nogil=True)
def _cholesky_kernel(gram, n_observed, tol, lower, accepted):
    n_features = gram.shape[2]
    _factor_lanes(gram, n_observed, tol * tol, lower, accepted,
                  np.empty((gram.shape[0], n_features)), np.empty(n_features, dtype=np.int64),
                  np.empty(n_features), n_features)


@numba.njit(cache=True, nogil=True)
def _solve_kernel(lower, rhs, solution):
    reciprocal = _diagonal_reciprocals(lower)
    forward = np.empty(reciprocal.shape)
    for m in range(rhs.shape[1]):
        _solve_lanes(lower, reciprocal, rhs[:, m, :], forward, solution[:, m, :],
                     lower.shape[2])


@numba.njit(cache=True, nogil=True)
def _inverse_kernel(lower, inverse):
    _inverse_lanes(lower, _diagonal_reciprocals(lower), inverse, lower.shape[2])


@numba.njit(inline="always")
def _diagonal_reciprocals(lower):
    """1 / the diagonal of each factor, (p, features)."""
    n_coef, n_features = lower.shape[0], lower.shape[2]
    reciprocal = np.empty((n_coef, n_features))
    for i in range(n_coef):
        for g in range(n_features):
            reciprocal[i, g] = 1.0 / lower[i, i, g]
    return reciprocal


# The factor, solves and inverse of many small systems at once: arrays (p, p, lanes) with the
# features ("lanes") last and the loops over them innermost and branch-free, so that each step
# runs on SIMD lanes for several features at once. One p x p system at a time is a chain of
# dependent square roots, divisions and short sums (latency-bound: ~1,000 cycles for p = 6).


@numba.njit(inline="always")
def _factor_lanes(gram, n_observed, threshold, lower, accepted, reciprocal, rank, scratch,
                  count):
    """Cholesky factors of ``gram[:, :, :count]`` with the rank decision of
    :func:`_cholesky_with_rank` (``threshold`` is tol^2): ``lower``, ``accepted``, the
    reciprocals of the diagonals (the solves and the inverse multiply by them) and ``rank``.
    ``scratch`` holds ``count`` values."""
    n_coef = gram.shape[0]
    for g in range(count):
        rank[g] = 0
    for j in range(n_coef):
        _lane_dots(lower, j, j, scratch, count)
        for g in range(count):
            original = gram[j, j, g]
            residual = original - scratch[g]
            reference = original if original > 0 else 1.0
            keep = residual > threshold * reference and rank[g] < n_observed[g] and original > 0
            accepted[j, g] = keep
            rank[g] += keep
            diagonal = np.sqrt(residual if keep else 1.0)
            lower[j, j, g] = diagonal
            reciprocal[j, g] = 1.0 / diagonal
        for k in range(j):
            for g in range(count):
                lower[j, k, g] = lower[j, k, g] if accepted[j, g] else 0.0
                lower[k, j, g] = 0.0
        for i in range(j + 1, n_coef):
            _lane_dots(lower, i, j, scratch, count)
            for g in range(count):
                entry = (gram[i, j, g] - scratch[g]) * reciprocal[j, g]
                lower[i, j, g] = entry if accepted[j, g] else 0.0


@numba.njit(inline="always")
def _lane_dots(lower, i, j, out, count):
    """``out[g]`` = sum over k < j of lower[i, k, g] lower[j, k, g], for the first ``count``
    lanes (rows i and j of each factor so far)."""
    for g in range(count):
        out[g] = 0.0
    for k in range(j):
        for g in range(count):
            out[g] += lower[i, k, g] * lower[j, k, g]


@numba.njit(inline="always")
def _solve_lanes(lower, reciprocal, rhs, forward, solution, count):
    """Solve L L' b = rhs (``rhs``, ``solution``: (p, lanes)) for the first ``count`` lanes;
    ``forward`` is (p, lanes) scratch."""
    n_coef = lower.shape[0]
    for i in range(n_coef):
        for g in range(count):
            forward[i, g] = rhs[i, g]
        for k in range(i):
            for g in range(count):
                forward[i, g] -= lower[i, k, g] * forward[k, g]
        for g in range(count):
            forward[i, g] *= reciprocal[i, g]
    for i in range(n_coef - 1, -1, -1):
        for g in range(count):
            solution[i, g] = forward[i, g]
        for k in range(i + 1, n_coef):
            for g in range(count):
                solution[i, g] -= lower[k, i, g] * solution[k, g]
        for g in range(count):
            solution[i, g] *= reciprocal[i, g]


@numba.njit(inline="always")
def _inverse_lanes(lower, reciprocal, inverse, count):
    """The inverses of the lower-triangular factors, by forward substitution."""
    n_coef = lower.shape[0]
    for i in range(n_coef):
        for g in range(count):
            inverse[i, i, g] = reciprocal[i, g]
        for j in range(i):
            for g in range(count):
                inverse[i, j, g] = 0.0
            for m in range(j, i):
                for g in range(count):
                    inverse[i, j, g] -= lower[i, m, g] * inverse[m, j, g]
            for g in range(count):
                inverse[i, j, g] *= reciprocal[i, g]
        for j in range(i + 1, n_coef):
            for g in range(count):
                inverse[i, j, g] = 0.0
