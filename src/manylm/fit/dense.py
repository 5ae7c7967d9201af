"""Dense stacked least squares: one QR of the design serves every feature.

For features with no missing values and at most per-sample weights, limma's ``lm.series`` makes
one call to ``lm.fit(design, t(M))``. Here X = QR once; then one compiled read of each block
(:mod:`manylm.fit.projection_kernel`) gives the product with [Qc 1] (Qc = Q centred: the effects
of the centred rows and the row sums) and |y|^2. The residual sum of squares
|y - m|^2 - |Qc'y|^2 is used only where a bound on its rounding error shows it accurate to 1e-9;
elsewhere (a large mean, a tiny residual variance: the cases where that difference loses every
digit) the residuals are formed explicitly from centred rows, as they are with per-sample
weights or when residuals are kept.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from manylm.fit.chunk import ChunkFit
from manylm.fit.projection_kernel import (
    BASIS_GROUP,
    INEXACT,
    NOT_FINITE,
    DenseRowFit,
    fit_rows,
)

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
    basis: NDArray[np.floating]  # (n, 8k) [Qc, 1, 0...]: one product, centred effects and sums
    to_coefficients: NDArray[np.floating]  # (r + 1, r): [centred effects, sum] -> coefficients
    basis_t: NDArray[np.float64]  # basis transposed, C-contiguous (the kernel's layout)

    @property
    def one_read(self) -> bool:
        """Whether rows are fitted from one read (the constant in the design, no per-sample
        weights): their centred effects, sums and |y|^2 give everything."""
        return self.ones_coefficients is not None and self.sqrt_weights is None

    def rss_bound_factor(self, dtype: type) -> float:
        """The rounding-error bound of the one-read RSS per unit of |y|^2, in ``dtype``."""
        n_samples, rank = self.q.shape
        return float(4 * np.sqrt(n_samples) * (1 + np.sqrt(rank)) * np.finfo(dtype).eps)

    @property
    def row_fit(self) -> DenseRowFit | None:
        """The design as :func:`~manylm.fit.projection_kernel.fit_rows` takes it, when the
        one-read fit applies (float64 results)."""
        return self._row_fit(np.float64) if self.one_read else None

    def _row_fit(self, dtype: type) -> DenseRowFit:
        return DenseRowFit(
            self.basis_t, self.q.shape[1], np.ascontiguousarray(self.to_coefficients),
            np.flatnonzero(self.estimable).astype(np.int64), self.rss_bound_factor(dtype))

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
        # For the one-read kernel: Qc = Q - 1 (1'Q)/n gives the effects of the centred data,
        # Q'(y - m 1) = Qc'y, and a column of ones the row sums, all in one product. Zero
        # columns pad it to the kernel's group of 8.
        n_samples, rank = q.shape
        width = -(-(rank + 1) // BASIS_GROUP) * BASIS_GROUP
        basis = np.zeros((n_samples, width))
        basis[:, :rank] = q - q.mean(axis=0)[None, :]
        basis[:, rank] = 1.0
        # coefficients = R^-1 (centred effects) + mean * (coefficients of 1).
        to_coefficients = np.zeros((rank + 1, rank))
        to_coefficients[:rank] = r_inverse.T
        if ones_coef is not None:
            to_coefficients[rank] = ones_coef / n_samples
        return cls(q, r_inverse.T, estimable, stdev, ones_coef, sqrt_w, basis, to_coefficients,
                   np.ascontiguousarray(basis.T))

    def __call__(
        self,
        y: NDArray[np.floating],
        *,
        keep_residuals: bool = False,
        dtype: type | None = None,
    ) -> ChunkFit:
        """Fit every row of ``y`` (features x samples), with results of ``dtype``.

        ``dtype`` defaults to that of ``y``; float32 ``y`` with float64 results is read as it
        is where no residuals are formed. Rows with a missing or infinite value come out with a
        non-finite ``mean`` (and garbage elsewhere); the caller refits them.
        """
        n_features, n_samples = y.shape
        dtype = dtype or y.dtype.type
        if self.one_read and not keep_residuals:
            return self._one_read_fit(y, dtype)
        y = y.astype(dtype, copy=False)
        q: NDArray[np.floating] = self.q.astype(dtype, copy=False)
        centre: NDArray[np.floating] | None = None
        rank = q.shape[1]
        mean = y.sum(axis=1) / n_samples
        if self.ones_coefficients is not None:
            if self.sqrt_weights is None:
                centre = mean
            else:
                w = self.sqrt_weights**2
                centre = (y @ w) / w.sum()
        effects, rss, residuals = self._residual_pass(y, q, centre, keep_residuals=keep_residuals)
        coef_est = effects @ self.r_inverse_t.astype(y.dtype, copy=False)
        if centre is not None and self.ones_coefficients is not None:
            coef_est += centre[:, None] * self.ones_coefficients[None, :]
        df = float(n_samples - rank)
        n_coef = self.estimable.shape[0]
        if rank == n_coef:
            coefficients = coef_est
        else:
            coefficients = np.full((n_features, n_coef), np.nan, dtype=coef_est.dtype)
            coefficients[:, self.estimable] = coef_est
        # the same for every feature: one row, broadcast (no per-feature memory)
        stdev: NDArray[np.floating] = np.broadcast_to(self.stdev_unscaled.astype(dtype),
                                                      (n_features, n_coef))
        residual_variance = rss / df if df > 0 else np.full(n_features, np.nan)
        kept_residuals = fitted = None
        if keep_residuals and residuals is not None:
            kept_residuals = residuals.copy()
            if self.sqrt_weights is not None:
                kept_residuals /= self.sqrt_weights
            fitted = y - kept_residuals
        return ChunkFit(
            coefficients=coefficients,
            stdev_unscaled=stdev,
            residual_variance=residual_variance,
            df_residual=np.broadcast_to(np.float64(df), (n_features,)),
            mean=mean,
            residuals=kept_residuals,
            fitted=fitted,
        )

    def _one_read_fit(self, y: NDArray[np.floating], dtype: type) -> ChunkFit:
        """Every row from one read of ``y`` (:func:`~manylm.fit.projection_kernel.fit_rows`),
        results of ``dtype``; rows it flags as inexact get their RSS and coefficients from the
        explicit residuals, rows with a missing or infinite value a NaN mean.

        One compiled pass gives each row's products with [Qc 1] (the effects of the centred row
        and its sum) and |y|^2; then RSS = |y|^2 - n m^2 - |Qc'y|^2. That difference loses
        digits when the fit explains nearly all of |y|^2 (a large mean, a tiny residual
        variance): its rounding error is at most about c sqrt(n) eps |y|^2. Rows where that
        bound exceeds 1e-9 of the RSS are refitted from their residuals, so every RSS is
        accurate to about 1e-9 or better (and so are the coefficients).
        """
        n_features, n_samples = y.shape
        n_coef = self.estimable.shape[0]
        rank = self.q.shape[1]
        coefficients: NDArray[np.floating] = (
            np.empty((n_features, n_coef), dtype=dtype) if rank == n_coef
            else np.full((n_features, n_coef), np.nan, dtype=dtype))
        residual_variance: NDArray[np.floating] = np.empty(n_features, dtype=dtype)
        mean: NDArray[np.floating] = np.empty(n_features, dtype=dtype)
        status = fit_rows(y, self._row_fit(dtype), coefficients, residual_variance, mean)
        mean[status == NOT_FINITE] = np.nan  # the caller refits them on their observed samples
        inexact = np.flatnonzero(status == INEXACT)
        if inexact.size:
            q: NDArray[np.floating] = self.q.astype(dtype, copy=False)
            effects, rss, _ = self._residual_pass(y[inexact].astype(dtype, copy=False), q,
                                                  mean[inexact])
            ones = self.ones_coefficients
            assert ones is not None  # one_read
            coefficients[np.ix_(inexact, np.flatnonzero(self.estimable))] = (
                effects @ self.r_inverse_t + mean[inexact, None] * ones[None, :])
            df = n_samples - rank
            residual_variance[inexact] = rss / df if df > 0 else np.nan
        return ChunkFit(
            coefficients=coefficients,
            stdev_unscaled=np.broadcast_to(self.stdev_unscaled.astype(dtype),
                                           (n_features, n_coef)),
            residual_variance=residual_variance,
            df_residual=np.broadcast_to(np.float64(n_samples - rank), (n_features,)),
            mean=mean,
        )

    def _residual_pass(
        self, y: NDArray[np.floating], q: NDArray[np.floating],
        centre: NDArray[np.floating] | None, *, keep_residuals: bool = False,
    ) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating] | None]:
        """Effects and RSS from the explicit residuals (centred on ``centre`` when given)."""
        # Two scratch blocks per thread, reused: fresh multi-megabyte temporaries would be
        # page-faulted in on every block and cost more than the arithmetic.
        work, scratch = _scratch(y.shape, y.dtype, 2)
        if centre is not None:
            np.subtract(y, centre[:, None], out=work)
        else:
            np.copyto(work, y)
        if self.sqrt_weights is not None:
            work *= self.sqrt_weights.astype(y.dtype, copy=False)
        effects = work @ q
        np.matmul(effects, q.T, out=scratch)
        residuals = np.subtract(work, scratch, out=work)
        rss = np.einsum("ij,ij->i", residuals, residuals)
        return effects, rss, residuals if keep_residuals else None


_THREAD_SCRATCH = threading.local()


def _scratch(shape: tuple[int, int], dtype: np.dtype[Any], count: int) -> list[NDArray[Any]]:
    """``count`` reusable arrays of ``shape`` for the calling thread (contents undefined)."""
    rows, cols = shape
    cached = getattr(_THREAD_SCRATCH, "arrays", None)
    if cached is None or cached[0].dtype != dtype or cached[0].shape[1] != cols or (
            cached[0].shape[0] < rows) or len(cached) < count:
        cached = [np.empty((max(rows, 1), cols), dtype=dtype) for _ in range(count)]
        _THREAD_SCRATCH.arrays = cached
    return [array[:rows] for array in cached[:count]]
