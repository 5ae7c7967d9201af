"""Sample (array) quality weights by REML (limma's ``arrayWeights(method = "reml")``).

Ritchie, Diyagama, Neilson, van Laar, Dobrovic, Holloway & Smyth (2006), "Empirical array
quality weights in the analysis of microarray data", BMC Bioinformatics 7:261. Each sample's
residual variance is sigma_g^2 / w_j with log w_j linear in the sum-to-zero contrasts of the
samples; the weights are found by Fisher scoring with a prior of ``prior_n`` genes at w = 1.
Every iteration is one weighted fit of all genes (vectorised over genes); the information matrix
needs only the leverages and the squared hat matrix of the weighted design.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.design.matrix import Design
from manylm.errors import InputError, ManylmWarning

__all__ = ["array_weights"]


def array_weights(
    expression: pd.DataFrame,
    design: Design,
    *,
    prior_n: float = 10,
    max_iterations: int = 50,
    tol: float = 1e-5,
) -> pd.Series:
    """One quality weight per sample (mean log weight zero), as limma's REML ``arrayWeights``.

    Features with a missing value are left out of the estimation (limma's ``method = "reml"``;
    its gene-by-gene method is not implemented here).
    """
    y = expression[list(design.sample_ids)].to_numpy(dtype=np.float64)
    y = y[np.isfinite(y).all(axis=1)]
    x = design.matrix[:, design.estimable]
    n_samples, n_coef = x.shape
    ones = pd.Series(1.0, index=pd.Index(design.sample_ids, name="sample"), name="weight")
    if y.shape[0] < 2 or n_samples - n_coef < 2:
        return ones
    contrasts = np.vstack([np.eye(n_samples - 1), -np.ones((1, n_samples - 1))])
    z = np.column_stack([np.ones(n_samples), contrasts])
    weights = np.ones(n_samples)
    gamma = np.zeros(n_samples - 1)
    residuals, s2, hat = _weighted_fit(y, x, weights)
    keep = s2 >= 1e-15
    y = y[keep]
    n_genes = y.shape[0]
    if n_genes < 2:
        return ones
    residuals, s2 = residuals[keep], s2[keep]
    last = np.inf
    for iteration in range(1, max_iterations + 1):
        if iteration > 1:
            residuals, s2, hat = _weighted_fit(y, x, weights)
        leverage = np.diag(hat)
        info = z.T @ ((1 - 2 * leverage)[:, None] * z) + z.T @ (hat**2) @ z
        info2 = info[1:, 1:] - np.outer(info[1:, 0], info[0, 1:]) / info[0, 0]
        score = (weights[None, :] * residuals**2 / s2[:, None]).mean(axis=0) - (1 - leverage)
        info2 = n_genes * info2 + prior_n * contrasts.T @ contrasts
        score = n_genes * score + prior_n * (weights - 1)
        gradient = contrasts.T @ score
        step = np.linalg.solve(info2, gradient)
        criterion = float(gradient @ step) / (n_samples - 1) / (n_genes + prior_n)
        if not np.isfinite(criterion) or criterion >= last:
            warnings.warn("Array weights: convergence tolerance not achievable; stopping.",
                          ManylmWarning, stacklevel=2)
            break
        last = criterion
        gamma = gamma + step
        weights = np.exp(-(contrasts @ gamma))
        if criterion < tol:
            break
    else:
        warnings.warn("Array weights: iteration limit reached.", ManylmWarning, stacklevel=2)
    return pd.Series(weights, index=ones.index, name="weight")


def _weighted_fit(y: NDArray[np.float64], x: NDArray[np.float64], weights: NDArray[np.float64]
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Unweighted residuals, weighted residual variances and the weighted hat matrix."""
    root = np.sqrt(weights)
    q, r = np.linalg.qr(x * root[:, None])
    coefficients = ((y * root[None, :]) @ q) @ np.linalg.inv(r).T
    residuals = y - coefficients @ x.T
    rank = x.shape[1]
    s2 = (weights[None, :] * residuals**2).sum(axis=1) / (x.shape[0] - rank)
    if not np.all(np.isfinite(s2)):
        raise InputError("Array weights need finite expression values.")
    return residuals, s2, q @ q.T
