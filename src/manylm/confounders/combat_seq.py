"""``combat_seq``: batch correction of RNA-seq counts that keeps them counts (sva's
``ComBat_seq``).

Zhang Y, Parmigiani G, Johnson WE (2020). ComBat-seq: batch effect adjustment for RNA-seq count
data. NAR Genomics and Bioinformatics 2(3):lqaa078. Reproduces sva 3.46's ``ComBat_seq`` with
its defaults (no shrinkage of the batch parameters): negative binomial dispersions are
estimated within each batch (:mod:`.combat_seq_dispersion`), one NB GLM with batch and the
biological covariates is fitted to every gene (:mod:`.combat_seq_glm`), the batch effect is
removed from the fitted means, the dispersions are averaged over batches, and every count is
mapped to the same quantile of the batch-free distribution (:mod:`.combat_seq_quantiles`).
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
from manylm.confounders.combat_checks import check_design
from manylm.confounders.combat_seq_dispersion import common_dispersion, tagwise_dispersion
from manylm.confounders.combat_seq_glm import fit_nb_glm
from manylm.confounders.combat_seq_quantiles import match_quantiles
from manylm.design.estimability import estimable_columns
from manylm.errors import DataError, ManylmWarning
from manylm.io._ids import quote_ids

__all__ = ["CombatSeqResult", "combat_seq", "fit_combat_seq"]

#: edgeR ``glmFit(prior.count = 1e-4)``, as ComBat_seq calls it.
PRIOR_COUNT = 1e-4


@dataclass(frozen=True)
class CombatSeqResult:
    """Adjusted counts and the negative binomial estimates behind them.

    Attributes
    ----------
    adjusted : DataFrame or array of shape (n_genes, n_samples)
        Adjusted counts, in the form the counts came in.
    batches : list of str
    batch_sizes : Series
        Samples per batch.
    common_dispersion : Series (n_batches,)
    dispersion : DataFrame (n_genes x n_batches)
        Gene-wise dispersion within each batch (NaN for genes left unadjusted).
    gamma_hat : DataFrame (n_genes x n_batches)
        Batch effects on the log scale (NaN for genes left unadjusted).
    unadjusted : list of str
        Genes with only zero counts in some batch, returned unchanged (as in sva).
    covariate_names : list of str
        Columns of the biological model (group and covariates), besides batch.
    """

    adjusted: Any
    batches: list[str]
    batch_sizes: pd.Series
    common_dispersion: pd.Series
    dispersion: pd.DataFrame
    gamma_hat: pd.DataFrame
    unadjusted: list[str]
    covariate_names: list[str]


def combat_seq(
    counts: Any,
    batch: Any,
    *,
    group: Any = None,
    covariates: Any = None,
    samples: pd.DataFrame | None = None,
    full_model: bool = True,
) -> Any:
    """Remove batch effects from RNA-seq counts with ComBat-seq (sva's ``ComBat_seq``).

    Parameters
    ----------
    counts : DataFrame or array of shape (n_genes, n_samples)
        Raw read counts (non-negative; no missing values).
    batch : str, Series or sequence
        One batch label per sample, or a column of ``samples``. Every batch needs at least 2
        samples.
    group : str, Series or sequence, optional
        The biological condition to protect (sva's ``group``).
    covariates : str, DataFrame or array, optional
        Further covariates to protect (sva's ``covar_mod``), e.g. a formula over ``samples``.
    samples : DataFrame, optional
        The sample sheet, indexed by sample ID, for column names and formulas.
    full_model : bool, default True
        Include ``group`` in the model (sva's ``full_mod``).

    Returns
    -------
    DataFrame or array of shape (n_genes, n_samples)
        Adjusted counts (whole numbers), same labels and order as ``counts``.

    Raises
    ------
    DataError
        Missing or negative counts.
    InputError, DesignError
        A batch with a single sample, a covariate confounded with batch, one batch only.

    Notes
    -----
    Genes with only zeros in some batch are returned unchanged, as in sva. The Bayesian shrinkage
    of sva's ``shrink = TRUE`` (Monte Carlo integration over genes) is not implemented.
    """
    return fit_combat_seq(counts, batch, group=group, covariates=covariates, samples=samples,
                          full_model=full_model).adjusted


def fit_combat_seq(
    counts: Any,
    batch: Any,
    *,
    group: Any = None,
    covariates: Any = None,
    samples: pd.DataFrame | None = None,
    full_model: bool = True,
) -> CombatSeqResult:
    """Run :func:`combat_seq` and keep its estimates (a :class:`CombatSeqResult`)."""
    matrix = feature_matrix(counts, what="counts")
    _check_counts(matrix)
    sheet = sample_sheet(samples, matrix)
    layout = batch_layout(batch, matrix, sheet)
    model_columns, model_names = _biological_model(group, covariates, matrix, sheet,
                                                   full_model=full_model)
    check_design(layout, model_columns, model_names, matrix, mean_only=False, reference=None,
                 method="ComBat-seq")
    adjusted, common, dispersion, gamma_hat, keep = combat_seq_arrays(matrix.values, layout,
                                                                      model_columns)
    _warn_zero_batches(matrix, layout, keep)
    index = pd.Index(matrix.feature_ids, name="feature")
    columns = pd.Index(layout.levels, name="batch")
    return CombatSeqResult(
        adjusted=like_input(counts, adjusted), batches=list(layout.levels),
        batch_sizes=pd.Series(layout.sizes, index=columns, name="n_samples"),
        common_dispersion=pd.Series(common, index=columns, name="common_dispersion"),
        dispersion=pd.DataFrame(dispersion, index=index, columns=columns),
        gamma_hat=pd.DataFrame(gamma_hat, index=index, columns=columns),
        unadjusted=[matrix.feature_ids[i] for i in np.flatnonzero(~keep)],
        covariate_names=model_names,
    )


def combat_seq_arrays(
    counts: NDArray[np.float64], layout: BatchLayout, model_columns: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
           NDArray[np.bool_]]:
    """ComBat-seq on checked arrays.

    Returns the adjusted counts, the common dispersion of each batch, the gene-wise dispersions
    and batch effects (n_genes x n_batches, NaN for genes not adjusted) and the mask of adjusted
    genes.
    """
    n_batches = layout.n_batches
    batch_columns = [layout.columns(k) for k in range(n_batches)]
    keep = np.ones(counts.shape[0], dtype=bool)
    for columns in batch_columns:
        keep &= (counts[:, columns] != 0).any(axis=1)
    if not keep.any():
        raise DataError("Every gene has only zero counts in some batch: ComBat-seq has nothing "
                        "to adjust.")
    y = counts[keep]
    model = np.hstack([np.ones((counts.shape[1], 1)), model_columns])
    indicators = np.zeros((counts.shape[1], n_batches))
    indicators[np.arange(counts.shape[1]), layout.codes] = 1.0
    design = np.hstack([indicators, model_columns])
    common = np.empty(n_batches)
    dispersion = np.empty((y.shape[0], n_batches))
    for k, columns in enumerate(batch_columns):
        within = model[columns]
        # sva falls back to one common dispersion without covariates when the batch is too
        # small for the model or does not see every level of it.
        if (columns.size <= design.shape[1] - n_batches + 1
                or not estimable_columns(within).all()):
            common[k] = common_dispersion(y[:, columns], np.ones((columns.size, 1)),
                                          batch=layout.levels[k])
            dispersion[:, k] = common[k]
        else:
            common[k] = common_dispersion(y[:, columns], within, batch=layout.levels[k])
            dispersion[:, k] = tagwise_dispersion(y[:, columns], within, common[k])
    sample_dispersion = dispersion[:, layout.codes]
    log_library = np.log(y.sum(axis=0))
    weights = layout.sizes / layout.sizes.sum()
    coefficients, _ = fit_nb_glm(y, design, log_library, sample_dispersion,
                                 prior_count=PRIOR_COUNT)
    grand_mean = coefficients[:, :n_batches] @ weights
    offset = log_library[None, :] + grand_mean[:, None]
    coefficients, fitted = fit_nb_glm(y, design, offset, sample_dispersion,
                                      prior_count=PRIOR_COUNT)
    gamma_hat = coefficients[:, :n_batches]
    with np.errstate(divide="ignore"):
        batch_free_mu = np.exp(np.log(fitted) - gamma_hat[:, layout.codes])
    pooled_dispersion = dispersion.mean(axis=1)
    adjusted_kept = match_quantiles(y, fitted, sample_dispersion, batch_free_mu,
                                    pooled_dispersion[:, None])
    adjusted = counts.copy()
    adjusted[keep] = adjusted_kept
    full_dispersion = np.full((counts.shape[0], n_batches), np.nan)
    full_dispersion[keep] = dispersion
    full_gamma = np.full((counts.shape[0], n_batches), np.nan)
    full_gamma[keep] = gamma_hat
    return adjusted, common, full_dispersion, full_gamma, keep


def _biological_model(group: Any, covariates: Any, matrix: FeatureMatrix,
                      sheet: pd.DataFrame | None, *, full_model: bool
                      ) -> tuple[NDArray[np.float64], list[str]]:
    """Group indicators (treatment contrasts, first level as reference) then covariates."""
    columns: list[NDArray[np.float64]] = []
    names: list[str] = []
    if group is not None:
        groups = batch_layout(group, matrix, sheet, name="group")
        if full_model and groups.n_batches > 1:
            for level in range(1, groups.n_batches):
                columns.append((groups.codes == level).astype(np.float64)[:, None])
                names.append(f"group[{groups.levels[level]}]")
    values, covariate_names = covariate_matrix(covariates, matrix, sheet,
                                               what="covariates to protect")
    columns.append(values)
    names += covariate_names
    return np.hstack(columns), names


def _check_counts(matrix: FeatureMatrix) -> None:
    values = matrix.values
    missing = np.isnan(values)
    if missing.any():
        row, column = (int(i[0]) for i in np.nonzero(missing))
        raise DataError(
            f"The counts have {int(missing.sum())} missing value(s), e.g. gene "
            f"{matrix.feature_ids[row]!r}, sample {matrix.sample_label(column)!r}; ComBat-seq "
            "needs every count. Remove those genes or samples."
        )
    negative = values < 0
    if negative.any():
        row, column = (int(i[0]) for i in np.nonzero(negative))
        raise DataError(
            f"The counts have {int(negative.sum())} negative value(s), e.g. gene "
            f"{matrix.feature_ids[row]!r}, sample {matrix.sample_label(column)!r}; ComBat-seq "
            "needs raw read counts."
        )
    if not np.array_equal(values, np.round(values)):
        warnings.warn("The counts are not all whole numbers; ComBat-seq's adjusted counts are.",
                      ManylmWarning, stacklevel=3)


def _warn_zero_batches(matrix: FeatureMatrix, layout: BatchLayout,
                       keep: NDArray[np.bool_]) -> None:
    if keep.all():
        return
    rows = np.flatnonzero(~keep)
    warnings.warn(
        f"{rows.size} gene(s) have only zero counts in some batch and were left unadjusted, as "
        f"sva's ComBat_seq does: {quote_ids([matrix.feature_ids[r] for r in rows])}.",
        ManylmWarning, stacklevel=3)
