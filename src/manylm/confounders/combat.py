"""``combat``: empirical Bayes batch correction of a features x samples matrix (sva's ``ComBat``).

Johnson WE, Li C, Rabinovic A (2007). Adjusting batch effects in microarray expression data
using empirical Bayes methods. Biostatistics 8(1):118-127. Reproduces sva 3.46's ``ComBat``:
parametric and non-parametric priors, mean-only adjustment, a reference batch, and covariates
(``mod``) whose effects are protected. The data are standardised (:mod:`.combat_standardize`),
batch effects are estimated and shrunk (:mod:`.combat_priors`, :mod:`.combat_nonparametric`),
and the adjusted data are put back on the original scale.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.confounders.batch_inputs import (
    BatchLayout,
    FeatureMatrix,
    batch_layout,
    covariate_matrix,
    feature_matrix,
    like_input,
    sample_sheet,
)
from manylm.confounders.combat_checks import check_design, unadjustable_features
from manylm.confounders.combat_nonparametric import nonparametric_posteriors
from manylm.confounders.combat_priors import (
    BatchMoments,
    Priors,
    batch_moments,
    hyperpriors,
    location_estimates,
    parametric_posteriors,
    scale_estimates,
    stack_moments,
)
from manylm.confounders.combat_standardize import BatchModel, batch_design
from manylm.errors import DataError, ManylmWarning
from manylm.parallel import parallel_map

__all__ = ["CombatResult", "combat", "fit_combat"]

#: Values per block of rows in ComBat's passes (8 MB of float64).
_BLOCK_VALUES = 2**20


@dataclass(frozen=True)
class CombatResult:
    """Batch-corrected data and the estimates behind them.

    Attributes
    ----------
    adjusted : DataFrame or array of shape (n_features, n_samples)
        The corrected data, in the form the data came in.
    batches : list of str
        Batch names, in the order of the columns of the estimate tables.
    batch_sizes : Series
        Samples per batch.
    gamma_hat, delta_hat, gamma_star, delta_star : DataFrame (n_features x n_batches)
        Additive and multiplicative batch effects on the standardised scale: least-squares
        estimates and their posterior (shrunken) values. NaN for features left unadjusted.
    priors : DataFrame (n_batches x 4)
        ``gamma_bar``, ``tau2``, ``a_prior``, ``b_prior`` of each batch.
    unadjusted : list of str
        Features returned unchanged (see :func:`combat`).
    reference_batch : str or None
    parametric, mean_only : bool
    covariate_names : list of str
        The protected covariate columns.
    """

    adjusted: Any
    batches: list[str]
    batch_sizes: pd.Series
    gamma_hat: pd.DataFrame
    delta_hat: pd.DataFrame
    gamma_star: pd.DataFrame
    delta_star: pd.DataFrame
    priors: pd.DataFrame
    unadjusted: list[str]
    reference_batch: str | None
    parametric: bool
    mean_only: bool
    covariate_names: list[str]


def combat(
    data: Any,
    batch: Any,
    *,
    covariates: Any = None,
    samples: pd.DataFrame | None = None,
    parametric: bool = True,
    mean_only: bool = False,
    reference_batch: object | None = None,
    block_rows: int | None = None,
    n_jobs: int | None = None,
) -> Any:
    """Remove batch effects with ComBat's empirical Bayes adjustment (sva's ``ComBat``).

    Parameters
    ----------
    data : DataFrame or array of shape (n_features, n_samples)
        Continuous data such as log-expression (for read counts use
        :func:`~manylm.confounders.combat_seq.combat_seq`). NaN marks a missing value.
    batch : str, Series or sequence
        One batch label per sample, or the name of a column of ``samples``. A Series is matched
        to the data's columns by sample ID.
    covariates : str, Design, DataFrame or array, optional
        Variables whose effects must be kept (sva's ``mod``), e.g. ``"~ cancer"`` with
        ``samples``. An intercept column is dropped (the batch indicators span it).
    samples : DataFrame, optional
        The sample sheet, indexed by sample ID, for a column name or formula.
    parametric : bool, default True
        Parametric priors (normal / inverse gamma); ``False`` uses every other feature's
        estimates as the prior (slower: quadratic in the number of features).
    mean_only : bool, default False
        Adjust the batch means only, not the variances. Needed when a batch has one sample.
    reference_batch : label, optional
        A batch left unchanged; the others are adjusted towards it.
    block_rows, n_jobs : int, optional
        Features per block and worker threads (default: about 8 MB blocks, every core). The
        result does not depend on them.

    Returns
    -------
    DataFrame or array of shape (n_features, n_samples)
        The adjusted data, same labels and order as ``data``. Missing values stay missing.

    Raises
    ------
    DesignError
        A batch label or covariate is missing, a covariate is confounded with batch, or there is
        only one batch.
    InputError
        A batch has one sample (without ``mean_only``) or the reference batch does not exist.

    Notes
    -----
    As in sva, features that are constant within a batch are returned unchanged (with a
    :class:`~manylm.ManylmWarning`), and so are features whose missing values leave a batch
    without the two observations its variance needs (sva fails or returns NaN there). With any
    missing value each feature is fitted on its observed samples and sva's pooled variance
    switches to the ``n - 1`` sample variance for every feature, exactly as sva does.
    """
    return fit_combat(data, batch, covariates=covariates, samples=samples,
                      parametric=parametric, mean_only=mean_only,
                      reference_batch=reference_batch, block_rows=block_rows,
                      n_jobs=n_jobs).adjusted


def fit_combat(
    data: Any,
    batch: Any,
    *,
    covariates: Any = None,
    samples: pd.DataFrame | None = None,
    parametric: bool = True,
    mean_only: bool = False,
    reference_batch: object | None = None,
    block_rows: int | None = None,
    n_jobs: int | None = None,
) -> CombatResult:
    """Run :func:`combat` and keep its estimates (a :class:`CombatResult`).

    Parameters are those of :func:`combat`.
    """
    matrix = feature_matrix(data)
    sheet = sample_sheet(samples, matrix)
    layout = batch_layout(batch, matrix, sheet)
    covariate_values, covariate_names = covariate_matrix(covariates, matrix, sheet,
                                                         what="covariates to protect")
    reference = (None if reference_batch is None
                 else layout.level_index(reference_batch, what="The reference batch"))
    check_design(layout, covariate_values, covariate_names, matrix, mean_only=mean_only,
                 reference=reference)
    adjusted, estimates, unadjusted = combat_arrays(
        matrix, layout, covariate_values, parametric=parametric, mean_only=mean_only,
        reference=reference, block_rows=block_rows, n_jobs=n_jobs)
    return _result(data, matrix, layout, adjusted, estimates, unadjusted, reference,
                   parametric, mean_only, covariate_names)


@dataclass(frozen=True)
class _Estimates:
    gamma_hat: NDArray[np.float64]
    delta_hat: NDArray[np.float64]
    gamma_star: NDArray[np.float64]
    delta_star: NDArray[np.float64]
    priors: Priors


def combat_arrays(
    matrix: FeatureMatrix,
    layout: BatchLayout,
    covariates: NDArray[np.float64],
    *,
    parametric: bool,
    mean_only: bool,
    reference: int | None,
    block_rows: int | None = None,
    n_jobs: int | None = None,
) -> tuple[NDArray[np.float64], _Estimates, NDArray[np.bool_]]:
    """ComBat on checked arrays: adjusted values, estimates (for the adjusted rows) and the mask
    of rows left unadjusted.

    Two passes over blocks of rows, on worker threads: the first fits and standardises each row
    and keeps only its per-batch moments; after the priors and posteriors (a few numbers per
    row and batch), the second standardises again and adjusts. No features x samples
    intermediate is kept besides the output.
    """
    values = matrix.values
    batch_columns = [layout.columns(k) for k in range(layout.n_batches)]
    skip = unadjustable_features(matrix, layout, batch_columns, mean_only=mean_only)
    rows = np.flatnonzero(~skip)
    n_missing = int(np.isnan(values).sum(axis=1)[rows].sum())
    if n_missing:
        warnings.warn(
            f"{n_missing} missing value(s): each feature is fitted on its observed samples and "
            "the pooled variance is the sample variance of the observed residuals, as in sva's "
            "ComBat; missing cells stay missing.", ManylmWarning, stacklevel=3)
    model = BatchModel(
        design=batch_design(layout.codes, layout.n_batches, covariates, reference),
        batch_sizes=layout.sizes, reference=reference,
        reference_columns=batch_columns[reference] if reference is not None else None,
        missing=n_missing > 0)
    per_block = block_rows or max(1, _BLOCK_VALUES // values.shape[1])
    blocks = [rows[i:i + per_block] for i in range(0, rows.size, per_block)]

    def first_pass(block: NDArray[np.intp]) -> tuple[NDArray[np.float64],
                                                     NDArray[np.float64], BatchMoments]:
        block_values = values[block]
        coefficients = model.coefficients(block_values)
        pooled_sd = model.pooled_sd(block_values, coefficients)
        standardized = model.standardize(block_values, coefficients, pooled_sd)
        return coefficients, pooled_sd, batch_moments(standardized, layout.codes,
                                                      layout.n_batches)

    parts = parallel_map(first_pass, blocks, n_jobs=n_jobs)
    coefficients = np.vstack([p[0] for p in parts])
    pooled_sd = np.concatenate([p[1] for p in parts])
    moments = stack_moments([p[2] for p in parts])
    # A row whose own fit failed (a covariate level unobserved for it) cannot be adjusted.
    fitted = np.isfinite(pooled_sd) & (pooled_sd > 0) & np.isfinite(coefficients).all(axis=1)
    if not fitted.all():
        _warn_unfitted(matrix, rows[~fitted])
        skip[rows[~fitted]] = True
        rows, coefficients, pooled_sd = rows[fitted], coefficients[fitted], pooled_sd[fitted]
        moments = BatchMoments(moments.n_observed[fitted], moments.mean[fitted],
                               moments.sum_squares[fitted])
    if rows.size < 2:
        raise DataError(
            f"ComBat needs at least 2 features it can adjust to estimate its priors; "
            f"{rows.size} of {values.shape[0]} qualify (see the notes above)."
        )
    gamma_hat = location_estimates(moments, reference)
    delta_hat = scale_estimates(moments, mean_only=mean_only)
    priors = hyperpriors(gamma_hat, delta_hat)
    if parametric:
        gamma_star, delta_star = parametric_posteriors(moments, gamma_hat, delta_hat, priors,
                                                       mean_only=mean_only)
    else:
        gamma_star, delta_star = np.empty_like(gamma_hat), np.empty_like(delta_hat)
        for k in range(layout.n_batches):
            gamma_star[:, k], delta_star[:, k] = nonparametric_posteriors(
                *(np.ascontiguousarray(a[:, k]) for a in (
                    moments.n_observed, moments.mean, moments.sum_squares, gamma_hat,
                    delta_hat)), block_rows=block_rows, n_jobs=n_jobs)
    if reference is not None:
        gamma_star[:, reference] = 0.0
        delta_star[:, reference] = 1.0
    adjusted = np.empty_like(values)
    adjusted[skip] = values[skip]
    position = np.empty(values.shape[0], dtype=np.intp)
    position[rows] = np.arange(rows.size)
    scale = np.sqrt(delta_star)

    def second_pass(block: NDArray[np.intp]) -> None:
        at = position[block]
        mean = model.standardized_mean(coefficients[at])
        standardized = values[block] - mean
        standardized /= pooled_sd[at, None]  # as in the first pass, to the last bit
        standardized -= gamma_star[at][:, layout.codes]
        standardized /= scale[at][:, layout.codes]
        standardized *= pooled_sd[at, None]
        standardized += mean
        adjusted[block] = standardized

    blocks = [rows[i:i + per_block] for i in range(0, rows.size, per_block)]
    parallel_map(second_pass, blocks, n_jobs=n_jobs)
    if reference is not None:  # sva hands the reference batch back untouched
        columns = batch_columns[reference]
        adjusted[:, columns] = values[:, columns]
    n_features = values.shape[0]
    estimates = _Estimates(gamma_hat=_expand(gamma_hat, rows, n_features),
                           delta_hat=_expand(delta_hat, rows, n_features),
                           gamma_star=_expand(gamma_star, rows, n_features),
                           delta_star=_expand(delta_star, rows, n_features), priors=priors)
    return adjusted, estimates, skip


def _expand(values: NDArray[np.float64], rows: NDArray[np.intp],
            n_features: int) -> NDArray[np.float64]:
    full = np.full((n_features, values.shape[1]), np.nan)
    full[rows] = values
    return full


def _warn_unfitted(matrix: FeatureMatrix, rows: NDArray[np.intp]) -> None:
    from manylm.io._ids import quote_ids

    warnings.warn(
        f"{rows.size} feature(s) could not be fitted on their observed samples (a batch or "
        "covariate level has no observed value, or no residual variance is left) and were left "
        f"unadjusted: {quote_ids([matrix.feature_ids[i] for i in rows])}.",
        ManylmWarning, stacklevel=4)


def _result(data: Any, matrix: FeatureMatrix, layout: BatchLayout,
            adjusted: NDArray[np.float64], estimates: _Estimates, skip: NDArray[np.bool_],
            reference: int | None, parametric: bool, mean_only: bool,
            covariate_names: list[str]) -> CombatResult:
    index = pd.Index(matrix.feature_ids, name="feature")
    columns = pd.Index(layout.levels, name="batch")

    def table(values: NDArray[np.float64]) -> pd.DataFrame:
        return pd.DataFrame(values, index=index, columns=columns)

    priors = pd.DataFrame({"gamma_bar": estimates.priors.gamma_bar,
                           "tau2": estimates.priors.tau2, "a_prior": estimates.priors.a,
                           "b_prior": estimates.priors.b}, index=columns)
    return CombatResult(
        adjusted=like_input(data, adjusted), batches=list(layout.levels),
        batch_sizes=pd.Series(layout.sizes, index=columns, name="n_samples"),
        gamma_hat=table(estimates.gamma_hat), delta_hat=table(estimates.delta_hat),
        gamma_star=table(estimates.gamma_star), delta_star=table(estimates.delta_star),
        priors=priors, unadjusted=[matrix.feature_ids[i] for i in np.flatnonzero(skip)],
        reference_batch=None if reference is None else layout.levels[reference],
        parametric=parametric, mean_only=mean_only, covariate_names=covariate_names,
    )
