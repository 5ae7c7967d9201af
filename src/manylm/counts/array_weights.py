"""Sample (array) quality weights (limma's ``arrayWeights``): REML, or gene by gene.

Ritchie, Diyagama, Neilson, van Laar, Dobrovic, Holloway & Smyth (2006), "Empirical array
quality weights in the analysis of microarray data", BMC Bioinformatics 7:261. Each sample's
residual variance is sigma_g^2 / w_j with log w_j linear in the sum-to-zero contrasts of the
samples; the weights are found by Fisher scoring with a prior of ``prior_n`` genes at w = 1.
Every REML iteration is one weighted fit of all genes (vectorised over genes); the information
matrix needs only the leverages and the squared hat matrix of the weighted design. The gene-by-gene
method lives in :mod:`manylm.counts.array_weights_gene_by_gene`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.counts.array_weights_gene_by_gene import gene_by_gene_weights
from manylm.design.estimability import estimable_columns
from manylm.design.matrix import Design
from manylm.errors import InputError, ManylmWarning

__all__ = ["ARRAY_WEIGHT_METHODS", "array_weights"]


ARRAY_WEIGHT_METHODS = ("auto", "genebygene", "reml")


def array_weights(
    expression: pd.DataFrame,
    design: Design,
    *,
    weights: pd.DataFrame | NDArray[np.float64] | None = None,
    method: str = "auto",
    var_design: NDArray[np.float64] | pd.DataFrame | None = None,
    var_group: pd.Series | NDArray[np.object_] | list[object] | None = None,
    prior_n: float = 10,
    max_iterations: int = 50,
    tol: float = 1e-5,
) -> pd.Series:
    """One quality weight per sample, as limma's ``arrayWeights``.

    Parameters
    ----------
    expression : DataFrame of shape (n_features, n_samples)
    design : Design
    weights : DataFrame or array of shape (n_features, n_samples), optional
        Prior observation weights (e.g. voom's); zero weights mark values left out.
    method : {"auto", "genebygene", "reml"}
        ``"reml"``: Fisher scoring to convergence, every gene at once (features with a missing
        value are left out). ``"genebygene"``: one sequential pass of score updates, gene by
        gene (uses the features with missing values and the prior weights). ``"auto"`` (limma's
        default) picks gene-by-gene when there are missing values or prior weights, else REML.
    var_design : array of shape (n_samples, k), optional
        Variance design: log weights linear in its (centred) columns. Default: one free weight
        per sample (sum-to-zero contrasts).
    var_group : sequence of length n_samples, optional
        Samples of one group share one weight (a variance design of group contrasts).
    prior_n : float
        Prior information, in genes, that the weights equal one.

    Returns
    -------
    pandas.Series of length n_samples, indexed by sample ID.
    """
    if method not in ARRAY_WEIGHT_METHODS:
        raise InputError(f"array_weights: method must be one of {', '.join(ARRAY_WEIGHT_METHODS)};"
                         f" got {method!r}.")
    samples = list(design.sample_ids)
    y = expression[samples].to_numpy(dtype=np.float64, copy=True)
    x = design.matrix[:, design.estimable]
    n_samples, n_coef = x.shape
    ones = pd.Series(1.0, index=pd.Index(samples, name="sample"), name="weight")
    if y.shape[0] < 2 or n_samples - n_coef < 2:
        return ones
    prior = _prior_weights(weights, expression, samples, y)
    y[~np.isfinite(y)] = np.nan
    z2 = _variance_design(var_design, var_group, n_samples)
    has_missing = bool(np.isnan(y).any())
    if method == "auto":
        method = "genebygene" if has_missing or prior is not None else "reml"
    if method == "genebygene":
        found = gene_by_gene_weights(y, x, z2, prior, prior_n=prior_n)
        return pd.Series(found, index=ones.index, name="weight")
    if prior is not None:
        raise InputError("array_weights: REML with prior weights is not implemented; use "
                         "method='genebygene' (limma's choice for weighted data).")
    complete = ~np.isnan(y).any(axis=1)
    if not complete.all():
        warnings.warn(f"array_weights (REML): {int((~complete).sum())} feature(s) with missing "
                      "values left out.", ManylmWarning, stacklevel=2)
    reml = _reml_weights(y[complete], x, z2, prior_n, max_iterations, tol)
    return pd.Series(ones.to_numpy() if reml is None else reml, index=ones.index,
                     name="weight")


def _prior_weights(weights: pd.DataFrame | NDArray[np.float64] | None, expression: pd.DataFrame,
                   samples: list[str], y: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """Checked prior weights in the design's sample order; zero weights turn values to NaN."""
    if weights is None:
        return None
    if isinstance(weights, pd.DataFrame):
        prior = weights.loc[expression.index, samples].to_numpy(dtype=np.float64, copy=True)
    else:
        prior = np.array(weights, dtype=np.float64)
    if prior.shape != y.shape:
        raise InputError(f"array_weights: weights have shape {prior.shape}; expected {y.shape} "
                         "(features x samples, as the expression values).")
    if np.isnan(prior).any() or (prior < 0).any() or np.isinf(prior).any():
        raise InputError("array_weights: weights must be finite and >= 0 (no missing values).")
    zero = prior == 0
    y[zero] = np.nan
    prior[zero] = 1.0
    return prior


def _variance_design(var_design: NDArray[np.float64] | pd.DataFrame | None,
                     var_group: pd.Series | NDArray[np.object_] | list[object] | None,
                     n_samples: int) -> NDArray[np.float64]:
    """Z2: the columns the log weights are linear in (limma's var.design / var.group rules)."""
    if var_group is not None:
        groups = pd.Categorical(np.asarray(var_group, dtype=object))
        groups = groups.remove_unused_categories()
        if len(groups) != n_samples:
            raise InputError(f"array_weights: var_group has {len(groups)} entries for "
                             f"{n_samples} samples.")
        n_levels = len(groups.categories)
        if n_levels < 2:
            raise InputError("array_weights: var_group needs at least two groups.")
        contrasts = np.vstack([np.eye(n_levels - 1), -np.ones((1, n_levels - 1))])
        var_design = contrasts[groups.codes]
    if var_design is None:
        return np.vstack([np.eye(n_samples - 1), -np.ones((1, n_samples - 1))])
    z2 = np.asarray(var_design, dtype=np.float64)
    if z2.ndim == 1:
        z2 = z2[:, None]
    if z2.shape[0] != n_samples:
        raise InputError(f"array_weights: var_design has {z2.shape[0]} rows for {n_samples} "
                         "samples.")
    z2 = z2 - z2.mean(axis=0)
    keep = estimable_columns(z2)
    return np.ascontiguousarray(z2[:, keep])


def _reml_weights(y: NDArray[np.float64], x: NDArray[np.float64], z2: NDArray[np.float64],
                  prior_n: float, max_iterations: int, tol: float
                  ) -> NDArray[np.float64] | None:
    """limma's ``.arrayWeightsREML``: Fisher scoring over all genes at once."""
    n_samples = x.shape[0]
    n_gamma = z2.shape[1]
    z = np.column_stack([np.ones(n_samples), z2])
    weights = np.ones(n_samples)
    gamma = np.zeros(n_gamma)
    if y.shape[0] < 2:
        return None
    residuals, s2, hat = _weighted_fit(y, x, weights)
    keep = s2 >= 1e-15
    y = y[keep]
    n_genes = y.shape[0]
    if n_genes < 2:
        return None
    residuals, s2 = residuals[keep], s2[keep]
    last = np.inf
    for iteration in range(1, max_iterations + 1):
        if iteration > 1:
            residuals, s2, hat = _weighted_fit(y, x, weights)
        leverage = np.diag(hat)
        info = z.T @ ((1 - 2 * leverage)[:, None] * z) + z.T @ (hat**2) @ z
        info2 = info[1:, 1:] - np.outer(info[1:, 0], info[0, 1:]) / info[0, 0]
        score = (weights[None, :] * residuals**2 / s2[:, None]).mean(axis=0) - (1 - leverage)
        info2 = n_genes * info2 + prior_n * z2.T @ z2
        score = n_genes * score + prior_n * (weights - 1)
        gradient = z2.T @ score
        step = np.linalg.solve(info2, gradient)
        criterion = float(gradient @ step) / n_gamma / (n_genes + prior_n)
        if not np.isfinite(criterion) or criterion >= last:
            warnings.warn("Array weights: convergence tolerance not achievable; stopping.",
                          ManylmWarning, stacklevel=2)
            break
        last = criterion
        gamma = gamma + step
        weights = np.exp(-(z2 @ gamma))
        if criterion < tol:
            break
    else:
        warnings.warn("Array weights: iteration limit reached.", ManylmWarning, stacklevel=2)
    return weights


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
