"""ComBat's first step: fit batch + covariates, then standardise every feature.

Johnson, Li & Rabinovic (2007), "Adjusting batch effects in microarray expression data using
empirical Bayes methods", Biostatistics 8:118-127, section 3.1 step 1, as sva's ``ComBat``
(3.46) computes it: the grand mean is the batch-size-weighted mean of the batch coefficients (or
the reference batch's coefficient), the pooled variance is the mean squared residual (over the
reference batch's samples only when there is one), and the covariate effects are kept in the
"standardised mean" that is added back at the end. Everything here works on a block of rows, so
that ComBat can stream over features.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["BatchModel", "batch_design"]


def batch_design(codes: NDArray[np.intp], n_batches: int, covariates: NDArray[np.float64],
                 reference: int | None) -> NDArray[np.float64]:
    """Batch indicators, then covariates (n_samples x (n_batches + n_covariates)).

    With a reference batch its column is all ones, as in sva, so the other batch coefficients
    are differences from the reference batch.
    """
    indicators = np.zeros((codes.size, n_batches))
    indicators[np.arange(codes.size), codes] = 1.0
    if reference is not None:
        indicators[:, reference] = 1.0
    return np.hstack([indicators, covariates])


@dataclass(frozen=True)
class BatchModel:
    """The linear model ComBat standardises with: batch indicators and covariates.

    Attributes
    ----------
    design : array of shape (n_samples, n_batches + n_covariates)
        From :func:`batch_design`; full column rank.
    batch_sizes : array of int, shape (n_batches,)
    reference : int or None
        The reference batch's position.
    reference_columns : array of int or None
        The samples of the reference batch.
    missing : bool
        sva's missing-value path (taken when any value of the matrix is missing): each feature is
        fitted on its observed samples, and the pooled variance is the sample variance (n - 1
        denominator, centred) of the observed residuals instead of their mean square.
    """

    design: NDArray[np.float64]
    batch_sizes: NDArray[np.intp]
    reference: int | None
    reference_columns: NDArray[np.intp] | None
    missing: bool

    @property
    def n_batches(self) -> int:
        return int(self.batch_sizes.size)

    def coefficients(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """Least-squares coefficients of each row of ``values`` (n_rows x n_columns).

        Complete rows share one solve of the normal equations (as sva does); rows with missing
        values are fitted on their own observed samples by :func:`manylm.lm_fit` (sva's
        ``Beta.NA``), and a coefficient such a row cannot estimate is NaN.
        """
        design = self.design
        complete = (~np.isnan(values).any(axis=1) if self.missing
                    else np.ones(values.shape[0], dtype=bool))
        coefficients = np.empty((values.shape[0], design.shape[1]))
        if complete.any():
            coefficients[complete] = np.linalg.solve(design.T @ design,
                                                     design.T @ values[complete].T).T
        if not complete.all():
            from manylm.fit.lmfit import lm_fit

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = lm_fit(values[~complete], design, n_jobs=1)
            coefficients[~complete] = fit.coefficients
        return coefficients

    def pooled_sd(self, values: NDArray[np.float64],
                  coefficients: NDArray[np.float64]) -> NDArray[np.float64]:
        """Square root of sva's ``var.pooled`` for each row (NaN where it cannot be formed)."""
        columns = self.reference_columns
        design = self.design if columns is None else self.design[columns]
        observed = values if columns is None else values[:, columns]
        residuals = observed - coefficients @ design.T
        if self.missing:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # rows the caller sets aside
                variance = np.nanvar(residuals, axis=1, ddof=1)
        else:
            residuals *= residuals
            variance = residuals.mean(axis=1)
        return np.sqrt(variance)

    def standardized_mean(self, coefficients: NDArray[np.float64]) -> NDArray[np.float64]:
        """Grand mean plus covariate effects for each row and sample (sva's ``stand.mean``)."""
        k = self.n_batches
        if self.reference is not None:
            grand_mean = coefficients[:, self.reference]
        else:
            grand_mean = coefficients[:, :k] @ (self.batch_sizes / self.batch_sizes.sum())
        mean = coefficients[:, k:] @ self.design[:, k:].T
        mean += grand_mean[:, None]
        return mean

    def standardize(self, values: NDArray[np.float64], coefficients: NDArray[np.float64],
                    pooled_sd: NDArray[np.float64]) -> NDArray[np.float64]:
        """``(values - standardized_mean) / pooled_sd`` (n_rows x n_samples)."""
        data = values - self.standardized_mean(coefficients)
        with np.errstate(divide="ignore", invalid="ignore"):
            data /= pooled_sd[:, None]
        return data
