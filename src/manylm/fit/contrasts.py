"""limma's ``contrasts.fit``: a fit re-expressed as linear combinations of its coefficients."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from manylm.design.contrasts import contrast_matrix
from manylm.errors import ContrastError, EstimabilityError
from manylm.fit.result import LinearModelFit

__all__ = ["contrasts_fit"]


def contrasts_fit(fit: LinearModelFit, contrasts: Any) -> LinearModelFit:
    """Coefficients, standard deviations and covariance for contrasts of the coefficients.

    Reproduces limma's ``contrasts.fit``: the estimates are C'b for every feature; when the
    design's coefficients are correlated, each feature's unscaled standard deviation uses the
    correlation matrix of the design's coefficients scaled by that feature's own standard
    deviations (exact with no missing values or weights, limma's approximation otherwise). A
    contrast that involves a coefficient a feature cannot estimate is NaN for that feature.

    Parameters
    ----------
    fit : LinearModelFit
    contrasts : list of str, mapping name -> expression, DataFrame or array
        ``["CvB = cancer[Cancer] - cancer[Biopsy]"]``, or a coefficients x contrasts matrix.
    """
    if fit.contrasts is not None:
        raise ContrastError("This fit already holds contrasts; take contrasts of the original fit.")
    matrix = contrast_matrix(contrasts, fit.coefficient_names)
    weights = matrix.to_numpy(dtype=float)
    if not np.all(np.isfinite(weights)):
        raise ContrastError("The contrast matrix has missing or infinite entries.")
    estimable = fit.design.estimable
    if np.any(weights[~estimable] != 0):
        bad = [
            name for name, est, row in zip(fit.coefficient_names, estimable, weights, strict=True)
            if not est and np.any(row != 0)
        ]
        raise EstimabilityError(
            f"A contrast uses {', '.join(bad)}, which the design cannot estimate."
        )
    keep = estimable & (np.abs(weights).sum(axis=1) > 0)
    w = weights[keep]
    coefficients = fit.coefficients[:, keep]
    stdev = fit.stdev_unscaled[:, keep]
    cov = fit.cov_unscaled[np.ix_(keep, keep)]
    missing = np.isnan(coefficients)
    has_missing = bool(missing.any())
    if has_missing:
        coefficients = np.where(missing, 0.0, coefficients)
        stdev = np.where(missing, 1e30, stdev)
    new_coefficients = coefficients @ w
    new_cov = w.T @ cov @ w
    d = np.sqrt(np.diag(cov))
    correlation = cov / np.outer(d, d)
    off_diagonal = correlation[np.tril_indices_from(correlation, k=-1)]
    if off_diagonal.size == 0 or np.all(np.abs(off_diagonal) < 1e-14):
        new_stdev = np.sqrt((stdev**2) @ (w**2))
    else:
        # U[g, c]^2 = (s_g * w_c)' Corr (s_g * w_c), one contrast at a time.
        new_stdev = np.empty_like(new_coefficients)
        for c in range(w.shape[1]):
            scaled = stdev * w[None, :, c]
            new_stdev[:, c] = np.sqrt(np.einsum("gi,ij,gj->g", scaled, correlation, scaled))
    if has_missing:
        lost = new_stdev > 1e20
        new_coefficients[lost] = np.nan
        new_stdev[lost] = np.nan
    names = [str(c) for c in matrix.columns]
    full = pd.DataFrame(weights, index=fit.coefficient_names, columns=names)
    return replace(
        fit,
        coefficients=new_coefficients,
        stdev_unscaled=new_stdev,
        cov_unscaled=new_cov,
        coefficient_names=names,
        contrasts=full,
        terms={name: [name] for name in names},
    )
