"""Structure left in the residuals: principal components and their association with covariates.

After a fit, the residuals should carry no systematic structure. Their principal components
(samples as observations, features as variables, as R's ``prcomp(t(residuals))``) are regressed
on each known covariate and each surrogate variable: a large R^2 shows a variable the model
misses or mis-specifies (Leek et al. 2010, Nature Reviews Genetics 11:733, fig. 2; the
"PC vs covariate" heat map of many QC reports). The R^2 and p-value of each (component,
variable) pair are those of R's ``summary(lm(pc ~ variable))``: a factor enters as indicator
columns, and p is the model's overall F test.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import special

from manylm.confounders.sva_blocks import centred_gram
from manylm.errors import DataError, InputError, ManylmWarning

__all__ = ["ResidualStructure", "association", "residual_components"]


@dataclass(frozen=True)
class ResidualStructure:
    """Principal components of residuals and their association with sample variables.

    Attributes
    ----------
    variance_explained : Series indexed PC1..PCk
        Fraction of the total residual variance along each component (of all components, so
        the k shown sum to at most 1).
    scores : DataFrame of shape (n_samples, k)
        Sample scores on each component (R's ``prcomp(t(residuals))$x``; signs are arbitrary).
    r_squared : DataFrame of shape (k, n_variables)
        R^2 of ``lm(PCi ~ variable)``: rows PC1..PCk, columns the covariates then the SVs.
    p_values : DataFrame of shape (k, n_variables)
        p-value of that model's F test (NaN when the variable has a single value, or no
        residual degree of freedom is left).
    """

    variance_explained: pd.Series
    scores: pd.DataFrame
    r_squared: pd.DataFrame
    p_values: pd.DataFrame


def residual_components(
    residuals: Any,
    covariates: pd.DataFrame,
    *,
    n_components: int = 10,
    surrogates: pd.DataFrame | NDArray[np.float64] | None = None,
) -> ResidualStructure:
    """Principal components of the residuals, with the R^2 and p of each against each variable.

    Parameters
    ----------
    residuals : DataFrame or array of shape (n_features, n_samples)
        For example ``lm_fit(..., keep_residuals=True).residuals``. Features with a missing
        value are left out (with a warning).
    covariates : DataFrame of shape (n_samples, n_variables)
        Indexed by sample ID (matched to the residuals' columns when those are labelled, else
        taken in order). Numeric columns enter as one slope; other columns (strings,
        categoricals, booleans) as factors. Samples missing a variable are left out of that
        variable's regressions only. Give codes such as batch numbers a categorical dtype to
        treat them as levels.
    n_components : int
        Components to keep (fewer if the residuals have lower rank).
    surrogates : DataFrame or array of shape (n_samples, n_sv), optional
        Surrogate variables, added as numeric variables (named by their columns, or sv1..).

    Returns
    -------
    ResidualStructure
    """
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) or (
            n_components < 1):
        raise InputError(f"'n_components' must be a positive integer; got {n_components!r}.")
    if not isinstance(covariates, pd.DataFrame):
        raise InputError("'covariates' must be a DataFrame of samples x variables.")
    values, sample_ids = _residual_matrix(residuals)
    table = _aligned(covariates, sample_ids, "covariates")
    if table.shape[0] != values.shape[1]:
        raise InputError(f"'covariates' has {table.shape[0]} rows for {values.shape[1]} "
                         "samples (residual columns); give one row per sample, in order.")
    if surrogates is not None:
        table = table.join(_surrogate_table(surrogates, sample_ids, table.index), how="left",
                           rsuffix="_sv")
    variance_explained, scores = principal_components(values, n_components)
    names = [f"PC{i + 1}" for i in range(scores.shape[1])]
    r_squared = np.full((len(names), table.shape[1]), np.nan)
    p_values = np.full_like(r_squared, np.nan)
    for j, column in enumerate(table.columns):
        r_squared[:, j], p_values[:, j] = association(scores, table[column])
    index = pd.Index(names, name="component")
    columns = pd.Index([str(c) for c in table.columns], name="variable")
    return ResidualStructure(
        variance_explained=pd.Series(variance_explained, index=index,
                                     name="variance_explained"),
        scores=pd.DataFrame(scores, index=pd.Index(table.index, name="sample"), columns=names),
        r_squared=pd.DataFrame(r_squared, index=index, columns=columns),
        p_values=pd.DataFrame(p_values, index=index, columns=columns),
    )


def principal_components(values: NDArray[np.floating], n_components: int
                         ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Variance fractions and sample scores of the leading components of row-centred data.

    Parameters
    ----------
    values : array of shape (n_features, n_samples), finite

    Returns
    -------
    variance_explained : array of shape (k,)
    scores : array of shape (n_samples, k)
        k = min(n_components, number of non-zero components).
    """
    gram = centred_gram(values)
    eigenvalues, vectors = np.linalg.eigh((gram + gram.T) / 2)
    eigenvalues, vectors = np.maximum(eigenvalues[::-1], 0.0), vectors[:, ::-1]
    total = float(eigenvalues.sum())
    if not total > 0:
        raise DataError("The residuals have no variance: there are no components to show.")
    rank = int(np.sum(eigenvalues > eigenvalues[0] * 1e-12))
    k = min(n_components, rank)
    vectors = vectors[:, :k]
    pivots = np.argmax(np.abs(vectors), axis=0)
    vectors = vectors * np.sign(vectors[pivots, np.arange(k)])[None, :]
    return eigenvalues[:k] / total, vectors * np.sqrt(eigenvalues[:k])[None, :]


def association(scores: NDArray[np.float64], variable: pd.Series
                ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """R^2 and F-test p-value of ``lm(score ~ variable)`` for every column of ``scores``.

    Parameters
    ----------
    scores : array of shape (n_samples, k)
    variable : Series of length n_samples
        Numeric (one slope) or anything else (a factor, treatment-coded); missing values leave
        their samples out.

    Returns
    -------
    r_squared, p_value : arrays of shape (k,)
    """
    present = ~variable.isna().to_numpy()
    y = scores[present]
    observed = variable[present]
    if pd.api.types.is_numeric_dtype(observed) and not pd.api.types.is_bool_dtype(observed):
        predictors = observed.to_numpy(dtype=np.float64)[:, None]
    else:
        levels = pd.Categorical(observed)
        codes = levels.codes
        predictors = (codes[:, None] == np.arange(1, len(levels.categories))[None, :]).astype(
            np.float64)
    n_obs = y.shape[0]
    nan = np.full(scores.shape[1], np.nan)
    if n_obs < 2:
        return nan, nan.copy()
    centred_x = predictors - predictors.mean(axis=0)
    centred_y = y - y.mean(axis=0)
    q, r = np.linalg.qr(centred_x) if centred_x.shape[1] else (np.zeros((n_obs, 0)), None)
    if r is not None:
        keep = np.abs(np.diag(r)) > 1e-10 * max(1.0, float(np.abs(r).max()))
        q = q[:, keep]
    df_model = q.shape[1]
    total = np.einsum("ij,ij->j", centred_y, centred_y)
    explained = np.einsum("ij,ij->j", q.T @ centred_y, q.T @ centred_y)
    with np.errstate(divide="ignore", invalid="ignore"):
        r_squared = np.where(total > 0, explained / total, np.nan)
    df_residual = n_obs - 1 - df_model
    if df_model == 0:
        return np.where(total > 0, 0.0, np.nan), nan.copy()
    if df_residual <= 0:
        return r_squared, nan.copy()
    residual = np.maximum(total - explained, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = (explained / df_model) / (residual / df_residual)
    p_value = special.fdtrc(df_model, df_residual, statistic)
    return r_squared, np.where(np.isnan(r_squared), np.nan, p_value)


def _residual_matrix(residuals: Any) -> tuple[NDArray[np.floating], list[str] | None]:
    if isinstance(residuals, pd.DataFrame):
        values = residuals.to_numpy(dtype=np.float64)
        sample_ids: list[str] | None = [str(c) for c in residuals.columns]
    else:
        values = np.asarray(residuals, dtype=np.float64)
        sample_ids = None
    if values.ndim != 2 or values.shape[1] < 2:
        raise DataError(f"'residuals' must be features x samples with at least two samples; "
                        f"got shape {values.shape}.")
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        warnings.warn(f"{int((~finite).sum())} feature(s) with missing residuals were left out "
                      "of the residual principal components.", ManylmWarning, stacklevel=3)
        values = values[finite]
    if values.shape[0] < 1:
        raise DataError("No feature has complete residuals.")
    return values, sample_ids


def _aligned(table: pd.DataFrame, sample_ids: list[str] | None, what: str) -> pd.DataFrame:
    frame = table.copy()
    frame.index = frame.index.astype(str)
    if sample_ids is None:
        return frame
    missing = [s for s in sample_ids if s not in frame.index]
    if missing:
        raise InputError(f"{len(missing)} sample(s) of the residuals have no row in {what}: "
                         f"{', '.join(missing[:10])}.")
    return frame.loc[sample_ids]


def _surrogate_table(surrogates: Any, sample_ids: list[str] | None, index: pd.Index
                     ) -> pd.DataFrame:
    if isinstance(surrogates, pd.DataFrame):
        return _aligned(surrogates, sample_ids, "surrogates").set_axis(index, axis=0)
    values = np.asarray(surrogates, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.shape[0] != len(index):
        raise InputError(f"'surrogates' has {values.shape[0]} rows for {len(index)} samples.")
    return pd.DataFrame(values, index=index,
                        columns=[f"sv{i + 1}" for i in range(values.shape[1])])
