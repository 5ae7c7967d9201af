"""Generalised least squares with correlated samples within blocks (limma's ``gls.series``).

Samples in the same block (patient, litter, batch of technical replicates) share a correlation
rho; with weights w the covariance of a feature's observations is D C D, D = diag(1/sqrt(w)).
Restricted to the samples a feature has, C is block diagonal with compound-symmetry blocks, whose
inverse is known in closed form: for a block with m observed samples,
(1 - rho)^-1 (I - c 11'), c = rho / (1 - rho + m rho). So every feature's GLS normal equations
follow from the per-block sums of :mod:`manylm.fit.block_sums`, with no per-feature loop, for
complete data, missing values and weights alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from manylm.design.estimability import constant_in_span
from manylm.fit.block import _check_no_infinity, refuse_bad_weights
from manylm.fit.block_sums import block_sums
from manylm.fit.chunk import ChunkFit
from manylm.fit.weighted import (
    BATCHED_RANK_TOLERANCE,
    _cholesky_solve,
    _cholesky_with_rank,
    _triangular_inverse,
)

__all__ = ["BlockedFitter", "block_indicators", "correlation_matrix", "fit_blocked"]


def block_indicators(block: NDArray[np.object_]) -> NDArray[np.float64]:
    """Samples x blocks 0/1 matrix, blocks in order of first appearance (as limma)."""
    labels = [str(b) for b in block]
    order = list(dict.fromkeys(labels))
    position = {label: i for i, label in enumerate(order)}
    indicators = np.zeros((len(labels), len(order)))
    indicators[np.arange(len(labels)), [position[label] for label in labels]] = 1.0
    return indicators


def correlation_matrix(blocks: NDArray[np.float64], correlation: float) -> NDArray[np.float64]:
    """The samples x samples correlation: 1 on the diagonal, rho within a block, 0 across."""
    matrix = correlation * (blocks @ blocks.T)
    np.fill_diagonal(matrix, 1.0)
    return np.asarray(matrix)


def fit_blocked(
    y: NDArray[np.floating],
    weights: NDArray[np.floating],
    design: NDArray[np.floating],
    blocks: NDArray[np.float64],
    correlation: float,
    *,
    centre_rows: bool,
    tol: float = BATCHED_RANK_TOLERANCE,
) -> ChunkFit:
    """GLS fit of every row of ``y`` (NaN = missing, weight 0 = left out)."""
    finite = np.isfinite(y)
    weights = np.where(finite, weights, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(finite, y, 0.0).sum(axis=1) / finite.sum(axis=1)
    scale = np.linalg.norm(design, axis=0)
    scale[scale == 0] = 1.0
    x = design / scale
    sums = block_sums(y, weights, x, blocks, centre_rows=centre_rows)
    rho = float(correlation)
    shrink = rho / (1 - rho + sums.n_in_block * rho)  # (G, b)
    factor = 1.0 / (1 - rho)
    a = factor * (sums.xwx - np.einsum("gb,gbi,gbj->gij", shrink, sums.xzs, sums.xzs))
    b = factor * (sums.xwy - np.einsum("gb,gbi,gb->gi", shrink, sums.xzs, sums.yzs))
    c = factor * (sums.ywy - np.einsum("gb,gb,gb->g", shrink, sums.yzs, sums.yzs))
    gram = np.ascontiguousarray(np.moveaxis(a, 0, -1))  # (p, p, G)
    lower, accepted = _cholesky_with_rank(gram, sums.n_observed, tol)
    columns = [b.T]
    if centre_rows:
        # X'V^-1 1: the weighted mean removed before the fit goes back through these.
        sqrt_w = np.sqrt(weights)
        ones_sums = (weights @ x, sqrt_w @ blocks)
        columns.append((factor * (ones_sums[0] - np.einsum(
            "gb,gbi,gb->gi", shrink, sums.xzs, ones_sums[1]))).T)
    rhs = np.where(accepted[:, None, :], np.stack(columns, axis=1), 0.0)
    solution = _cholesky_solve(lower, rhs)  # (p, k, G)
    variance_diag = np.sum(_triangular_inverse(lower) ** 2, axis=0)
    rank = accepted.sum(axis=0)
    df = (sums.n_observed - rank).astype(np.float64)
    rss = c - np.einsum("pg,gp->g", solution[:, 0, :], b)
    with np.errstate(invalid="ignore", divide="ignore"):
        residual_variance = np.where(df > 0, np.maximum(rss, 0.0) / df, np.nan)
    coefficients = solution[:, 0, :].T.copy()
    if centre_rows:
        coefficients += sums.centre[:, None] * solution[:, 1, :].T
    coefficients = np.where(accepted.T, coefficients / scale[None, :], np.nan)
    stdev = np.where(accepted.T, np.sqrt(variance_diag.T) / scale[None, :], np.nan)
    return ChunkFit(coefficients=coefficients, stdev_unscaled=stdev,
                    residual_variance=residual_variance, df_residual=df, mean=mean)


@dataclass(frozen=True)
class BlockedFitter:
    """Fits blocks of features by GLS with a common intra-block correlation.

    Called by the engine exactly like :class:`manylm.fit.block.BlockFitter`.
    """

    design: NDArray[np.floating]
    estimable: NDArray[np.bool_]
    blocks: NDArray[np.float64]
    correlation: float
    sample_weights: NDArray[np.floating] | None = None
    dtype: type = np.float64
    _centre_rows: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_centre_rows",
                           constant_in_span(self.design[:, self.estimable]))

    def __call__(
        self,
        y: NDArray[np.floating],
        weights: NDArray[np.floating] | None = None,
        *,
        first_row: int = 0,
        keep_residuals: bool = False,
        feature_ids: object = None,
        sample_ids: object = None,
    ) -> ChunkFit:
        y = np.asarray(y, dtype=np.float64)
        _check_no_infinity(y, first_row, feature_ids, sample_ids)
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            refuse_bad_weights(weights, first_row, feature_ids, sample_ids)
        elif self.sample_weights is not None:
            weights = np.broadcast_to(self.sample_weights, y.shape)
        else:
            weights = np.ones_like(y)
        x = self.design[:, self.estimable]
        fit = fit_blocked(y, weights, x, self.blocks, self.correlation,
                          centre_rows=self._centre_rows)
        if not self.estimable.all():
            full = np.full((y.shape[0], self.estimable.shape[0]), np.nan)
            stdev = full.copy()
            full[:, self.estimable] = fit.coefficients
            stdev[:, self.estimable] = fit.stdev_unscaled
            fit.coefficients, fit.stdev_unscaled = full, stdev
        if keep_residuals:
            fitted = np.nan_to_num(fit.coefficients) @ self.design.T
            fit.fitted = np.where(np.isfinite(y), fitted, np.nan)
            fit.residuals = y - fit.fitted
        return fit

    def covariance(self) -> NDArray[np.float64]:
        """(X' V^-1 X)^-1 over the estimable columns for the design-level correlation."""
        v = correlation_matrix(self.blocks, self.correlation)
        if self.sample_weights is not None:
            scale = 1 / np.sqrt(self.sample_weights)
            v = scale[:, None] * v * scale[None, :]
        x = self.design[:, self.estimable]
        return np.asarray(np.linalg.inv(x.T @ np.linalg.solve(v, x)))
