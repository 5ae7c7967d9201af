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
    n_features, n_samples = y.shape
    n_coef = design.shape[1]
    observed = weights > 0
    n_observed = observed.sum(axis=1)
    y0 = np.where(observed, y, 0.0)
    # limma's Amean: every finite value counts, whatever its weight.
    finite = np.isfinite(y)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(finite, y, 0.0).sum(axis=1) / finite.sum(axis=1)

    scale = np.linalg.norm(design, axis=0)
    scale[scale == 0] = 1.0
    x = design / scale
    # Gram matrices of all features in one product: G[g, i, j] = sum_n w[g, n] x[n, i] x[n, j].
    pairs = (x[:, :, None] * x[:, None, :]).reshape(n_samples, n_coef * n_coef)
    gram = (weights @ pairs).reshape(n_features, n_coef, n_coef)
    weight_total = weights.sum(axis=1)
    if centre_rows:
        with np.errstate(invalid="ignore", divide="ignore"):
            centre = np.where(weight_total > 0, (weights * y0).sum(axis=1) / weight_total, 0.0)
        work = np.where(observed, y0 - centre[:, None], 0.0)
        rhs = np.stack([(weights * work) @ x, weights @ x], axis=2)  # (G, p, 2)
    else:
        centre = None
        work = y0
        rhs = ((weights * work) @ x)[:, :, None]

    lower, accepted = _cholesky_with_rank(gram, n_observed, tol)
    solution = _cholesky_solve(lower, np.where(accepted[:, :, None], rhs, 0.0))
    lower_inverse = _triangular_inverse(lower)
    variance_diag = np.einsum("gkj,gkj->gj", lower_inverse, lower_inverse)

    coef_scaled = solution[:, :, 0]
    if centre is not None:
        coef_scaled = coef_scaled + centre[:, None] * solution[:, :, 1]
    fitted_work = solution[:, :, 0] @ x.T
    residuals = np.where(observed, work - fitted_work, 0.0)
    rss = np.einsum("gn,gn->g", weights * residuals, residuals)
    rank = accepted.sum(axis=1)
    df = (n_observed - rank).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        residual_variance = np.where(df > 0, rss / df, np.nan)
    coefficients = np.where(accepted, coef_scaled / scale, np.nan)
    stdev = np.where(accepted, np.sqrt(variance_diag) / scale, np.nan)
    fitted = None
    full_residuals = None
    if keep_residuals:
        fitted = np.where(observed, (coef_scaled @ x.T), np.nan)
        full_residuals = np.where(observed, y - fitted, np.nan)
    return ChunkFit(
        coefficients=coefficients,
        stdev_unscaled=stdev,
        residual_variance=residual_variance,
        df_residual=df,
        mean=mean,
        residuals=full_residuals,
        fitted=fitted,
    )


def _cholesky_with_rank(
    gram: NDArray[np.float64], n_observed: NDArray[np.int_], tol: float
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Batched Cholesky of ``gram`` that drops columns dependent on earlier ones.

    Returns the lower factor (identity on dropped columns, so it stays invertible) and the mask
    of accepted columns per feature.
    """
    n_features, n_coef, _ = gram.shape
    lower = np.zeros_like(gram)
    accepted = np.zeros((n_features, n_coef), dtype=bool)
    n_accepted = np.zeros(n_features, dtype=np.int64)
    for j in range(n_coef):
        original = gram[:, j, j]
        residual = original - np.einsum("gk,gk->g", lower[:, j, :j], lower[:, j, :j])
        reference = np.where(original > 0, original, 1.0)
        keep = (residual > (tol * tol) * reference) & (n_accepted < n_observed) & (original > 0)
        accepted[:, j] = keep
        n_accepted += keep
        diagonal = np.where(keep, np.sqrt(np.where(keep, residual, 1.0)), 1.0)
        # A dropped column becomes a decoupled unit row/column of the factor.
        lower[:, j, :j] = np.where(keep[:, None], lower[:, j, :j], 0.0)
        lower[:, j, j] = diagonal
        if j + 1 < n_coef:
            below = gram[:, j + 1 :, j] - np.einsum(
                "gik,gk->gi", lower[:, j + 1 :, :j], lower[:, j, :j]
            )
            lower[:, j + 1 :, j] = np.where(keep[:, None], below / diagonal[:, None], 0.0)
    return lower, accepted


def _cholesky_solve(lower: NDArray[np.float64], rhs: NDArray[np.float64]) -> NDArray[np.float64]:
    """Solve L L' b = rhs for every feature (rhs of shape (G, p, k))."""
    n_coef = lower.shape[1]
    z = np.empty_like(rhs)
    for i in range(n_coef):
        z[:, i] = (rhs[:, i] - np.einsum("gk,gkm->gm", lower[:, i, :i], z[:, :i])) / lower[
            :, i, i, None
        ]
    b = np.empty_like(rhs)
    for i in reversed(range(n_coef)):
        b[:, i] = (
            z[:, i] - np.einsum("gk,gkm->gm", lower[:, i + 1 :, i], b[:, i + 1 :])
        ) / lower[:, i, i, None]
    return b


def _triangular_inverse(lower: NDArray[np.float64]) -> NDArray[np.float64]:
    """Inverse of each lower-triangular factor, by forward substitution."""
    n_coef = lower.shape[1]
    inverse = np.zeros_like(lower)
    for i in range(n_coef):
        inverse[:, i, i] = 1.0 / lower[:, i, i]
        for j in range(i):
            inverse[:, i, j] = -np.einsum(
                "gk,gk->g", lower[:, i, j:i], inverse[:, j:i, j]
            ) / lower[:, i, i]
    return inverse
