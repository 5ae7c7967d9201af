"""``remove_batch_effect``: subtract fitted batch and covariate effects (limma's
``removeBatchEffect``), for plots and clustering.

Reproduces limma 3.54's ``removeBatchEffect``: the batch factors are coded with sum-to-zero
contrasts, the model ``design + batch + batch2 + covariates`` is fitted to every feature with
:func:`manylm.lm_fit`, and the fitted batch and covariate terms are subtracted. The effects in
``design`` (the biology to keep) are estimated alongside, so they are not removed.

This is for exploring data (heatmaps, PCA, clustering). Do not test the corrected values again:
their residual degrees of freedom are overstated. Fit the batch in the model instead
(``manylm.lm_fit(data, "~ group + batch", ...)``), as limma's documentation advises.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.confounders.batch_inputs import (
    BatchLayout,
    FeatureMatrix,
    aligned_rows,
    batch_layout,
    covariate_matrix,
    feature_matrix,
    like_input,
    sample_sheet,
)
from manylm.design.matrix import Design, design_matrix
from manylm.errors import DesignError

__all__ = ["remove_batch_effect", "sum_to_zero_columns"]


def remove_batch_effect(
    data: Any,
    batch: Any = None,
    *,
    batch2: Any = None,
    covariates: Any = None,
    design: Any = None,
    samples: pd.DataFrame | None = None,
    weights: Any = None,
) -> Any:
    """Remove batch effects and covariate effects from each feature (limma ``removeBatchEffect``).

    Parameters
    ----------
    data : DataFrame or array of shape (n_features, n_samples)
        Log-expression or similar; NaN marks a missing value (each feature is fitted on its
        observed samples, and missing cells stay missing).
    batch, batch2 : str, Series or sequence, optional
        Batch labels, or the names of columns of ``samples``.
    covariates : str, DataFrame or array, optional
        Numeric covariates whose (linear) effects are removed, as given (not centred, as in
        limma); a formula over ``samples`` is encoded first.
    design : str, Design, DataFrame or array, optional
        The effects to keep (default: an intercept only), e.g. ``"~ cancer"`` with ``samples``.
    samples : DataFrame, optional
        The sample sheet, indexed by sample ID, for column names and formulas.
    weights : array or DataFrame, optional
        Observation or sample weights, passed to the fit as in :func:`manylm.lm_fit`.

    Returns
    -------
    DataFrame or array of shape (n_features, n_samples)
        ``data`` minus the fitted batch and covariate effects, in the form ``data`` came in.
        With nothing to remove, ``data`` is returned unchanged (as a copy).

    Notes
    -----
    For plots and clustering only: a linear model fitted to the corrected data would treat
    removed effects as if they were known, and its p-values would be too small.
    """
    matrix = feature_matrix(data)
    if batch is None and batch2 is None and covariates is None:
        return like_input(data, matrix.values)
    sheet = sample_sheet(samples, matrix)
    removed: list[NDArray[np.float64]] = []
    names: list[str] = []
    for labels, label in ((batch, "batch"), (batch2, "batch2")):
        if labels is not None:
            layout = batch_layout(labels, matrix, sheet, name=label)
            removed.append(sum_to_zero_columns(layout))
            names += [f"{label}{level}" for level in layout.levels[:-1]]
    if covariates is not None:
        values, covariate_names = covariate_matrix(covariates, matrix, sheet)
        removed.append(values)
        names += covariate_names
    kept, kept_names = _design(design, matrix, sheet)
    removed_matrix = np.hstack(removed)
    full = Design.from_matrix(np.hstack([kept, removed_matrix]),
                              coefficient_names=_unique(kept_names + names),
                              sample_ids=matrix.sample_ids)
    fit_data: Any = matrix.values
    if matrix.sample_ids is not None:  # labelled weights are matched by ID
        fit_data = pd.DataFrame(fit_data, index=matrix.feature_ids, columns=matrix.sample_ids)
    from manylm.fit.lmfit import lm_fit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-estimable effects are simply not removed
        fit = lm_fit(fit_data, full, weights=weights)
    effects = np.nan_to_num(fit.coefficients[:, kept.shape[1]:], nan=0.0)
    return like_input(data, matrix.values - effects @ removed_matrix.T)


def sum_to_zero_columns(layout: BatchLayout) -> NDArray[np.float64]:
    """Sum-to-zero coding of a factor (R's ``contr.sum``): n_levels - 1 columns, the last level
    coded -1 in each."""
    codes = layout.codes
    columns = np.zeros((codes.size, max(layout.n_batches - 1, 0)))
    for k in range(layout.n_batches - 1):
        columns[codes == k, k] = 1.0
    columns[codes == layout.n_batches - 1, :] = -1.0
    return columns


def _design(design: Any, matrix: FeatureMatrix,
            samples: pd.DataFrame | None) -> tuple[NDArray[np.float64], list[str]]:
    n_samples = matrix.values.shape[1]
    if design is None:
        return np.ones((n_samples, 1)), ["(Intercept)"]
    if isinstance(design, str):
        if samples is None:
            raise DesignError(f"The design formula {design!r} needs the sample sheet: pass "
                              "samples=.")
        built = design_matrix(design, samples, warn=False)
        if built.dropped_samples:
            raise DesignError(
                f"The design variables are missing for sample(s) "
                f"{', '.join(built.dropped_samples[:10])}; fill them in or remove those "
                "samples."
            )
        return built.matrix, list(built.coefficient_names)
    if isinstance(design, Design):
        design = design.as_frame()
    if isinstance(design, pd.DataFrame):
        values, names = aligned_rows(design, matrix, "design")
    else:
        values = np.asarray(design, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        names = [f"design{j + 1}" for j in range(values.shape[1])]
    if values.ndim != 2 or values.shape[0] != n_samples:
        raise DesignError(f"The design has {values.shape[0]} rows; the data has {n_samples} "
                          "samples.")
    if not np.isfinite(values).all():
        raise DesignError("The design has missing or infinite values; fill them in or remove "
                          "those samples.")
    return values, names


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name}.{count}")
    return out
