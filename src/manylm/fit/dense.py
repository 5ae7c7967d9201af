"""Dense stacked least squares: one QR of the design serves every feature.

For features with no missing values and at most per-sample weights, limma's ``lm.series`` makes
one call to ``lm.fit(design, t(M))``. Here: X = QR once, effects E = Y Q, coefficients
B = E R^-T, and the residual sum of squares from the residuals Y - E Q' themselves (never
``|y|^2 - |Q'y|^2``, which loses every digit when the mean is large). When the intercept lies in
the column space of the design each row is first centred on its mean, which leaves the residuals
unchanged and keeps them accurate for large means; the mean is added back to the coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from manylm.fit.chunk import ChunkFit

__all__ = ["DenseSolver"]


@dataclass(frozen=True)
class DenseSolver:
    """Everything about the design that every chunk reuses.

    Build it once with :meth:`from_design`; call it on each block of features.
    """

    q: NDArray[np.floating]  # (n, r) orthonormal basis of the estimable columns
    r_inverse_t: NDArray[np.floating]  # (r, r) R^-T
    estimable: NDArray[np.bool_]  # (p,)
    stdev_unscaled: NDArray[np.floating]  # (p,), NaN where not estimable
    ones_coefficients: NDArray[np.floating] | None  # (r,) coefficients of the all-ones vector
    sqrt_weights: NDArray[np.floating] | None  # (n,) per-sample weights, square-rooted

    @classmethod
    def from_design(
        cls,
        design: NDArray[np.floating],
        estimable: NDArray[np.bool_],
        sample_weights: NDArray[np.floating] | None = None,
    ) -> DenseSolver:
        x = design[:, estimable]
        sqrt_w = None if sample_weights is None else np.sqrt(sample_weights)
        if sqrt_w is not None:
            x = x * sqrt_w[:, None]
        q, r = np.linalg.qr(x)
        r_inverse = np.linalg.inv(r)
        stdev = np.full(design.shape[1], np.nan)
        stdev[estimable] = np.sqrt(np.sum(r_inverse**2, axis=1))
        # Can the (weighted) constant be represented? Then rows may be centred first.
        ones = np.ones(design.shape[0]) if sqrt_w is None else sqrt_w.copy()
        ones_effects = q.T @ ones
        leftover = ones - q @ ones_effects
        ones_coef = None
        if np.linalg.norm(leftover) <= 1e-10 * np.linalg.norm(ones):
            ones_coef = r_inverse @ ones_effects
        return cls(q, r_inverse.T, estimable, stdev, ones_coef, sqrt_w)

    def __call__(self, y: NDArray[np.floating], *, keep_residuals: bool = False) -> ChunkFit:
        """Fit every row of ``y`` (features x samples, no missing values)."""
        n_features, n_samples = y.shape
        mean = y.mean(axis=1)
        centre: NDArray[np.floating] | None = None
        work = y
        if self.ones_coefficients is not None:
            if self.sqrt_weights is None:
                centre = mean
            else:
                w = self.sqrt_weights**2
                centre = (y @ w) / w.sum()
            work = y - centre[:, None]
        if self.sqrt_weights is not None:
            work = work * self.sqrt_weights
        q = self.q.astype(work.dtype, copy=False)
        effects = work @ q
        residuals = work - effects @ q.T
        rss = np.einsum("ij,ij->i", residuals, residuals)
        rank = self.q.shape[1]
        df = float(n_samples - rank)
        coef_est = effects @ self.r_inverse_t.astype(work.dtype, copy=False)
        if centre is not None and self.ones_coefficients is not None:
            coef_est += centre[:, None] * self.ones_coefficients[None, :]
        n_coef = self.estimable.shape[0]
        if rank == n_coef:
            coefficients = coef_est
        else:
            coefficients = np.full((n_features, n_coef), np.nan, dtype=coef_est.dtype)
            coefficients[:, self.estimable] = coef_est
        stdev = np.broadcast_to(self.stdev_unscaled.astype(work.dtype), (n_features, n_coef)).copy()
        residual_variance = rss / df if df > 0 else np.full(n_features, np.nan)
        fitted = None
        if keep_residuals:
            if self.sqrt_weights is not None:
                residuals = residuals / self.sqrt_weights
            fitted = y - residuals
        return ChunkFit(
            coefficients=coefficients,
            stdev_unscaled=stdev,
            residual_variance=residual_variance,
            df_residual=np.full(n_features, df),
            mean=mean,
            residuals=residuals if keep_residuals else None,
            fitted=fitted,
        )
