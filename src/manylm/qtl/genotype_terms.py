"""The genotype columns of each model, adjusted for the covariates, for a block of variants.

Three models, as Matrix eQTL's ``modelLINEAR``, ``modelANOVA`` and ``modelLINEAR_CROSS``:

* ``"linear"``: ``y ~ covariates + g``; the t test of ``g``.
* ``"anova"``: ``y ~ covariates + factor(round(g))``; the F test of the genotype classes present
  (2 df with all three of 0/1/2, 1 df with two).
* ``"interaction"``: ``y ~ covariates + c + g + g:c`` for one covariate ``c``; the t test of
  ``g:c`` (tensorQTL's interaction model; ``c`` is added to the covariates when absent).

For each variant the tested columns are residualised on the covariates and made orthonormal in
the inner product of the complete cases (:mod:`manylm.qtl.missing_genotypes`), so that for a
standardised phenotype residual ``y`` the products ``z_i = <u_i, y>`` give every statistic:
the tested column is the last, ``explained = z_last^2`` (``sum z_i^2`` for ANOVA) and
``available = D - z_1^2`` for the interaction (``D`` otherwise), ``D`` being the share of the
phenotype's residual sum of squares left on the complete cases (1 without missing calls).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from manylm.qtl.missing_genotypes import MissingSamples, missing_samples_structure
from manylm.qtl.residualize import ZERO_RESIDUAL

__all__ = ["MODELS", "STATUS", "BlockTerms", "genotype_terms"]

MODELS: tuple[str, ...] = ("linear", "anova", "interaction")

#: Why a variant was not tested (index = status code; 0 = tested).
STATUS: tuple[str, ...] = ("tested", "monomorphic", "below_maf", "collinear_with_covariates",
                           "interaction_not_estimable", "too_few_samples")
TESTED, MONOMORPHIC, BELOW_MAF, COLLINEAR, INTERACTION_NA, TOO_FEW = range(6)


@dataclass(frozen=True)
class BlockTerms:
    """Adjusted genotype columns of a block of variants.

    Attributes
    ----------
    directions : array of float64, shape (n_columns, n_variants, n_samples)
        ``u_i`` per variant (zero for a column that dropped out, and for untested variants).
    beta_scale : array of float64, shape (n_variants,)
        1 / complete-case norm of the tested column after removing the other genotype
        columns: ``beta = z_last * phenotype_residual_norm * beta_scale``.
    df : array of int64, shape (n_variants,)
        Residual degrees of freedom of each variant's model.
    n_terms : array of int64, shape (n_variants,)
        Columns tested together (1 for t tests; 1 or 2 for ANOVA).
    status : array of int8, shape (n_variants,)
        0 when tested, otherwise the reason (see :data:`STATUS`).
    maf : array of float64, shape (n_variants,)
        Minor allele frequency of the observed dosages.
    exact_rows : array of intp
        Variants with missing calls handled exactly; ``missing`` holds their correction.
    missing : MissingSamples or None
    n_imputed : int
        Tested variants with missing calls that were mean-imputed instead.
    """

    directions: NDArray[np.float64]
    beta_scale: NDArray[np.float64]
    df: NDArray[np.int64]
    n_terms: NDArray[np.int64]
    status: NDArray[np.int8]
    maf: NDArray[np.float64]
    exact_rows: NDArray[np.intp]
    missing: MissingSamples | None
    n_imputed: int


def genotype_terms(dosages: NDArray[np.floating], q: NDArray[np.float64], *, model: str,
                   interaction: NDArray[np.float64] | None = None, maf: float = 0.0,
                   missing: str = "complete", max_missing_exact: int = 32) -> BlockTerms:
    """Covariate-adjusted, orthonormalised genotype columns of a block of variants.

    Parameters
    ----------
    dosages : array of shape (n_variants, n_samples)
        Allele dosages (0-2), NaN for a missing call.
    q : array of shape (n_samples, rank)
        Orthonormal covariate basis (intercept included).
    model : {"linear", "anova", "interaction"}
    interaction : array of shape (n_samples,), optional
        The covariate interacting with the genotype (``model="interaction"``).
    maf : float
        Variants whose minor allele frequency is below this are not tested.
    missing : {"complete", "mean"}
        Exact complete-case tests, or Matrix eQTL's mean imputation.
    max_missing_exact : int
        Variants with more missing calls than this are mean-imputed even with
        ``missing="complete"`` (the exact correction costs ``m^2`` per pair).

    Returns
    -------
    BlockTerms
    """
    values = np.asarray(dosages, dtype=np.float64)
    n_variants, n_samples = values.shape
    missing_calls = np.isnan(values)
    any_missing = bool(missing_calls.any())
    if any_missing:
        observed = ~missing_calls
        n_missing = missing_calls.sum(axis=1)
        n_observed = n_samples - n_missing
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(observed, values, 0.0).sum(axis=1) / n_observed
        mean = np.where(n_observed > 0, mean, 0.0)
        filled = np.where(observed, values, mean[:, None])
        highest = np.where(observed, values, -np.inf).max(axis=1)
        lowest = np.where(observed, values, np.inf).min(axis=1)
    else:
        n_missing = np.zeros(n_variants, dtype=np.int64)
        mean = values.mean(axis=1)
        filled = values
        highest, lowest = values.max(axis=1), values.min(axis=1)
    frequency = mean / 2.0
    minor = np.minimum(frequency, 1.0 - frequency)
    status = np.zeros(n_variants, dtype=np.int8)
    status[~(highest > lowest)] = MONOMORPHIC
    status[(status == TESTED) & (minor < maf)] = BELOW_MAF

    exact = (n_missing > 0) & (missing == "complete") & (n_missing <= max_missing_exact)
    exact_rows = np.flatnonzero(exact & (status == TESTED))
    n_imputed = int(np.count_nonzero((n_missing > 0) & ~exact & (status == TESTED)))

    raw = _model_columns(filled, model, interaction)
    residuals, reference = _residualize_columns(raw, q)
    structure = (missing_samples_structure(q, missing_calls[exact_rows]) if len(exact_rows)
                 else None)
    directions, last_norm, kept = _orthonormalise(residuals, reference, exact_rows, structure)

    n_terms = kept.sum(axis=0).astype(np.int64) if model == "anova" else np.ones(
        n_variants, dtype=np.int64)
    untested = status != TESTED
    if model == "anova":
        status[~untested & (n_terms == 0)] = COLLINEAR
    else:
        status[~untested & ~kept[0]] = COLLINEAR
        if model == "interaction":
            status[(status == TESTED) & ~kept[1]] = INTERACTION_NA
    missing_rank = np.zeros(n_variants, dtype=np.int64)
    if structure is not None:
        missing_rank[exact_rows] = structure.rank
    n_columns = raw.shape[0]
    df = n_samples - q.shape[1] - missing_rank - (n_columns if model != "anova" else n_terms)
    status[(status == TESTED) & (df < 1)] = TOO_FEW
    directions[:, status != TESTED] = 0.0
    with np.errstate(divide="ignore"):
        beta_scale = np.where(last_norm > 0, 1.0 / np.sqrt(last_norm), np.nan)
    return BlockTerms(
        directions=directions, beta_scale=beta_scale, df=df.astype(np.int64),
        n_terms=n_terms, status=status, maf=minor, exact_rows=exact_rows,
        missing=structure, n_imputed=n_imputed,
    )


def _model_columns(filled: NDArray[np.float64], model: str,
                   interaction: NDArray[np.float64] | None) -> NDArray[np.float64]:
    """The raw genotype columns of the model, shape (n_columns, n_variants, n_samples)."""
    if model == "linear":
        return filled[None]
    if model == "interaction":
        assert interaction is not None
        return np.stack([filled, filled * interaction[None, :]])
    classes = np.rint(filled)
    return np.stack([(classes == 1.0).astype(np.float64), (classes == 2.0).astype(np.float64)])


def _residualize_columns(raw: NDArray[np.float64], q: NDArray[np.float64]
                         ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Covariate residuals of each column and its centred sum of squares (the rank reference).

    The columns are centred first (the intercept is in the span of ``q``), as
    :func:`manylm.qtl.residualize.residualize` does.
    """
    centred = raw - raw.mean(axis=2, keepdims=True)
    reference = np.einsum("avn,avn->av", centred, centred)
    for column in centred:
        column -= (column @ q) @ q.T
    return centred, reference


def _orthonormalise(residuals: NDArray[np.float64], reference: NDArray[np.float64],
                    exact_rows: NDArray[np.intp], structure: MissingSamples | None,
                    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Gram-Schmidt of each variant's columns in its complete-case inner product.

    Returns the directions (folded for exact rows), the squared norm of the last column after
    removing the earlier ones, and which columns survived (norm above the rank tolerance).
    """
    n_columns, n_variants, _ = residuals.shape
    gram = np.einsum("avn,bvn->abv", residuals, residuals)
    if structure is not None:
        projected = np.stack([structure.project(residuals[a, exact_rows])
                              for a in range(n_columns)])
        gram[:, :, exact_rows] -= np.einsum("avr,bvr->abv", projected, projected)
        folded = residuals.copy()
        for a in range(n_columns):
            folded[a, exact_rows] = structure.fold(residuals[a, exact_rows])
    else:
        folded = residuals
    tolerance = (ZERO_RESIDUAL ** 2) * reference
    directions = np.empty_like(residuals)
    kept = np.zeros((n_columns, n_variants), dtype=bool)
    # coefficients[b][a]: column b expressed on the orthonormal directions a < b
    norm0 = gram[0, 0]
    kept[0] = norm0 > tolerance[0]
    inv0 = np.where(kept[0], 1.0 / np.sqrt(np.where(kept[0], norm0, 1.0)), 0.0)
    directions[0] = folded[0] * inv0[:, None]
    last_norm = np.where(kept[0], norm0, 0.0)
    if n_columns == 2:
        # second column minus its projection on the first, in the complete-case metric
        along = gram[0, 1] * inv0
        norm1 = gram[1, 1] - along ** 2
        kept[1] = norm1 > tolerance[1]
        inv1 = np.where(kept[1], 1.0 / np.sqrt(np.where(kept[1], norm1, 1.0)), 0.0)
        directions[1] = (folded[1] - along[:, None] * directions[0]) * inv1[:, None]
        last_norm = np.where(kept[1], norm1, 0.0)
    return directions, last_norm, kept
