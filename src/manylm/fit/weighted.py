"""Stacked least squares when every feature has its own weights or its own missing samples.

limma's ``lm.series`` falls back to an R loop, one ``lm.wfit`` per feature, as soon as there is
a missing value or a weights matrix. Here the same fits are done for all features at once with
batched normal equations: the Gram matrices X' W_g X of every feature come from a single matrix
product, and a Cholesky factorisation with a per-feature rank decision is run column by column
(a loop over coefficients, vectorised over features). Missing values are observations of weight
zero, so each feature is fitted on its own observed samples, with its own residual df; a
coefficient that feature cannot estimate is NaN for it.

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
    limma's fit of a row with missing values. The rows are read where they lie, in the same
    pass that makes the weights and the sums (no copy of them first). None when one of them
    holds an infinite value (the caller reports it).
    """
    n_samples = y.shape[1]
    base = (np.ones(n_samples) if sample_weights is None
            else np.asarray(sample_weights, dtype=np.float64))
    m = rows.shape[0]
    y0, weights = np.empty((m, n_samples)), np.empty((m, n_samples))
    weighted_y = y0 if sample_weights is None else np.empty((m, n_samples))
    counts = [np.empty(m, dtype=np.int64) for _ in range(2)]
    totals = [np.empty(m) for _ in range(4)]
    infinite = _sums_kernel(y, np.ascontiguousarray(rows, dtype=np.intp), _NO_WEIGHTS, base,
                            y0, weights, weighted_y, counts[0], totals[0], counts[1], totals[1],
                            totals[2], totals[3])
    if infinite:
        return None
    sums = _RowSums(y0, weighted_y, counts[0], totals[0], counts[1], totals[1], totals[2],
                    totals[3])
    return _fit_from_sums(sums, weights, design, centre_rows=centre_rows, tol=tol)


def _fit_from_sums(sums: _RowSums, weights: NDArray[np.floating],
                   design: NDArray[np.floating], *, centre_rows: bool,
                   keep_residuals: bool = False, tol: float = BATCHED_RANK_TOLERANCE
                   ) -> ChunkFit:
    """The weighted fit given every row's sums and the zero-filled, weighted data."""
    y0, weighted_y = sums.y0, sums.weighted_y
    y = y0  # the type and shape of the data
    n_features, n_samples = y.shape
    n_coef = design.shape[1]
    # limma's Amean: every finite value counts, whatever its weight.
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums.y_total / sums.n_finite
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
    n_finite: NDArray[np.int64]
    y_total: NDArray[np.floating]  # sum of the finite values
    n_observed: NDArray[np.int64]  # non-zero weights
    weight_total: NDArray[np.floating]
    weighted_y_total: NDArray[np.floating]  # sum w y0
    weighted_squares: NDArray[np.floating]  # sum w y0^2


def _row_sums(y: NDArray[np.floating], weights: NDArray[np.floating]) -> _RowSums:
    """Every per-row sum the fit needs, and the zero-filled and weighted data, in one pass."""
    y0, weighted_y = np.empty_like(y), np.empty_like(y)
    n = y.shape[0]
    n_finite, n_observed = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    y_total, weight_total = np.empty(n, dtype=y.dtype), np.empty(n, dtype=y.dtype)
    weighted_y_total, weighted_squares = np.empty(n, dtype=y.dtype), np.empty(n, dtype=y.dtype)
    _sums_kernel(y, np.arange(n), weights, np.empty(0), y0, _NO_WEIGHTS, weighted_y, n_finite,
                 y_total, n_observed, weight_total, weighted_y_total, weighted_squares)
    return _RowSums(y0, weighted_y, n_finite, y_total, n_observed, weight_total,
                    weighted_y_total, weighted_squares)


#: "No weights matrix" for :func:`_sums_kernel`.
_NO_WEIGHTS = np.empty((0, 0))


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz"})
def _sums_kernel(y, rows, given, base, y0, weights, weighted_y, n_finite, y_total, n_observed,
                 weight_total, weighted_y_total, weighted_squares):
    """Every per-row sum of rows ``rows`` of ``y``, and their zero-filled and weighted values.

    The weights are the matrix ``given`` (rows as ``y``), or, when it is empty, ``base`` where
    a value is present and 0 where it is missing (then written to ``weights``). Branch-free,
    with sums that may be reassociated: the inner loop runs on SIMD lanes (NaN and infinity
    keep their meaning: no finite-math assumption). Returns the number of infinite values.
    """
    use_given = given.shape[0] > 0
    infinite = 0
    for r in range(rows.shape[0]):
        row = rows[r]
        count = 0
        observed = 0
        total = 0.0
        w_total = 0.0
        wy_total = 0.0
        squares = 0.0
        for j in range(y.shape[1]):
            raw = np.float64(y[row, j])
            finite = np.abs(raw) < np.inf
            infinite += np.abs(raw) == np.inf
            value = raw if finite else 0.0
            if use_given:
                w = given[row, j]
            else:
                w = base[j] if finite else 0.0
                weights[r, j] = w
            y0[r, j] = value
            wy = w * value
            weighted_y[r, j] = wy
            count += finite
            observed += w != 0
            total += value
            w_total += w
            wy_total += wy
            squares += wy * value
        n_finite[r] = count
        y_total[r] = total
        n_observed[r] = observed
        weight_total[r] = w_total
        weighted_y_total[r] = wy_total
        weighted_squares[r] = squares
    return infinite


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
    n_coef = gram.shape[0]
    threshold = tol * tol
    for g in range(gram.shape[2]):
        n_accepted = 0
        for j in range(n_coef):
            original = gram[j, j, g]
            squares = 0.0
            for k in range(j):
                squares += lower[j, k, g] * lower[j, k, g]
            residual = original - squares
            reference = original if original > 0 else 1.0
            keep = residual > threshold * reference and n_accepted < n_observed[g] and (
                original > 0)
            accepted[j, g] = keep
            diagonal = 1.0
            if keep:
                n_accepted += 1
                diagonal = np.sqrt(residual)
            else:
                for k in range(j):
                    lower[j, k, g] = 0.0
            lower[j, j, g] = diagonal
            for i in range(j):
                lower[i, j, g] = 0.0
            for i in range(j + 1, n_coef):
                if keep:
                    products = 0.0
                    for k in range(j):
                        products += lower[i, k, g] * lower[j, k, g]
                    lower[i, j, g] = (gram[i, j, g] - products) / diagonal
                else:
                    lower[i, j, g] = 0.0


@numba.njit(cache=True, nogil=True)
def _solve_kernel(lower, rhs, solution):
    n_coef, n_rhs = rhs.shape[0], rhs.shape[1]
    forward = np.empty(n_coef)
    for g in range(rhs.shape[2]):
        for m in range(n_rhs):
            for i in range(n_coef):
                total = 0.0
                for k in range(i):
                    total += lower[i, k, g] * forward[k]
                forward[i] = (rhs[i, m, g] - total) / lower[i, i, g]
            for i in range(n_coef - 1, -1, -1):
                total = 0.0
                for k in range(i + 1, n_coef):
                    total += lower[k, i, g] * solution[k, m, g]
                solution[i, m, g] = (forward[i] - total) / lower[i, i, g]


@numba.njit(cache=True, nogil=True)
def _inverse_kernel(lower, inverse):
    n_coef = lower.shape[0]
    for g in range(lower.shape[2]):
        for i in range(n_coef):
            inverse[i, i, g] = 1.0 / lower[i, i, g]
            for j in range(i):
                total = 0.0
                for m in range(j, i):
                    total += lower[i, m, g] * inverse[m, j, g]
                inverse[i, j, g] = -total / lower[i, i, g]
            for j in range(i + 1, n_coef):
                inverse[i, j, g] = 0.0
