"""Covariates: one orthonormal basis for every test, and phenotypes adjusted for it once.

The Matrix eQTL / tensorQTL algebra (Shabalin 2012; Taylor-Weiner et al. 2019, Genome Biology
20:228): with ``Q`` an orthonormal basis of the covariates (intercept included), the genotype
coefficient of ``y ~ covariates + g`` is that of ``y - QQ'y`` on ``g - QQ'g`` (Frisch-Waugh-
Lovell), so both sides are residualised once and every (variant, phenotype) test is one entry
of a matrix product of standardised residuals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from manylm.design.estimability import RANK_TOLERANCE, estimable_columns
from manylm.errors import DataError, DesignError
from manylm.parallel import parallel_map

__all__ = ["CovariateBasis", "StandardizedPhenotypes", "covariate_basis", "residualize",
           "standardize_phenotypes"]

#: Phenotypes per chunk of the row-wise passes (about 3.5 MB of float64 at 445 samples).
_CHUNK_ROWS = 1024
#: A residual norm below this fraction of the centred norm counts as zero (lm's rank rule).
ZERO_RESIDUAL = RANK_TOLERANCE


@dataclass(frozen=True)
class CovariateBasis:
    """An orthonormal basis of the covariate space.

    Attributes
    ----------
    q : array of shape (n_samples, rank)
        Orthonormal columns spanning the covariates and the intercept.
    names : list of str
        The covariates, with ``"(Intercept)"`` first when it was added.
    """

    q: NDArray[np.float64]
    names: list[str]

    @property
    def rank(self) -> int:
        return int(self.q.shape[1])


def covariate_basis(covariates: NDArray[np.floating] | None, names: Sequence[str],
                    n_samples: int) -> CovariateBasis:
    """QR of the covariates, with an intercept added when the constant is not in their span.

    Parameters
    ----------
    covariates : array of shape (n_samples, n_covariates), or None
    names : sequence of str
        One name per covariate column (for messages).
    n_samples : int

    Returns
    -------
    CovariateBasis

    Raises
    ------
    DesignError
        If a covariate is missing or infinite for some sample, or is a linear combination of
        the covariates before it (the message names it and the covariates it depends on).
    """
    if covariates is None or np.size(covariates) == 0:
        matrix = np.ones((n_samples, 1))
        return CovariateBasis(matrix / np.sqrt(n_samples), ["(Intercept)"])
    matrix = np.asarray(covariates, dtype=np.float64)
    labels = [str(n) for n in names]
    if not np.all(np.isfinite(matrix)):
        rows, cols = np.nonzero(~np.isfinite(matrix))
        raise DesignError(
            f"covariate {labels[cols[0]]!r} is missing or infinite for {len(set(rows))} "
            f"sample(s) (row {rows[0] + 1} first); fill the values or drop those samples"
        )
    with_intercept = np.column_stack([np.ones(n_samples), matrix])
    intercept_needed = estimable_columns(with_intercept[:, [*range(1, matrix.shape[1] + 1), 0]]
                                         )[-1]
    if intercept_needed:
        matrix, labels = with_intercept, ["(Intercept)", *labels]
    estimable = estimable_columns(matrix)
    if not estimable.all():
        raise DesignError(_collinearity_message(matrix, labels, estimable))
    q, _ = np.linalg.qr(matrix)
    return CovariateBasis(np.ascontiguousarray(q), labels)


def _collinearity_message(matrix: NDArray[np.float64], labels: list[str],
                          estimable: NDArray[np.bool_]) -> str:
    parts = []
    for j in np.flatnonzero(~estimable)[:5]:
        earlier = np.flatnonzero(estimable[:j])
        coefficients, *_ = np.linalg.lstsq(matrix[:, earlier], matrix[:, j], rcond=None)
        scale = np.abs(coefficients) * np.linalg.norm(matrix[:, earlier], axis=0)
        used = [labels[earlier[i]] for i in np.flatnonzero(scale > 1e-8 * scale.max(initial=0))]
        parts.append(f"{labels[j]!r} = a combination of {', '.join(map(repr, used)) or 'nothing'}"
                     if used else f"{labels[j]!r} is zero for every sample")
    return (
        "covariates collinear with each other: " + "; ".join(parts) + ". Remove the redundant "
        "covariate(s) (for a factor, one level is already absorbed by the intercept)."
    )


def residualize(values: NDArray[np.floating], q: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rows of ``values`` minus their projection on the columns of ``q``.

    Rows are centred first (the intercept is in the span of ``q``), which keeps the residual
    accurate for rows with a large mean.

    Parameters
    ----------
    values : array of shape (n_rows, n_samples)
    q : array of shape (n_samples, rank), orthonormal columns, spanning the constant

    Returns
    -------
    array of float64, shape (n_rows, n_samples)
    """
    centred = np.asarray(values, dtype=np.float64)
    centred = centred - centred.mean(axis=1, keepdims=True)
    centred -= (centred @ q) @ q.T
    return centred


@dataclass(frozen=True)
class StandardizedPhenotypes:
    """Phenotypes adjusted for the covariates and scaled to unit norm.

    Attributes
    ----------
    values : array of float64, shape (n_kept, n_samples)
        Residuals divided by their norm.
    residual_norm : array of float64, shape (n_kept,)
        The norm of each residual vector (to turn correlations back into coefficients).
    kept : array of intp, shape (n_kept,)
        Which input rows these are.
    constant : array of intp
        Input rows whose residual is zero (constant given the covariates): not tested.
    """

    values: NDArray[np.float64]
    residual_norm: NDArray[np.float64]
    kept: NDArray[np.intp]
    constant: NDArray[np.intp]


def standardize_phenotypes(phenotypes: NDArray[np.floating], q: NDArray[np.float64],
                           ids: Sequence[str] | NDArray[np.object_], *,
                           n_threads: int = 1) -> StandardizedPhenotypes:
    """Residualise the phenotypes on the covariates and scale them to unit norm.

    This runs before the first genotype block can be multiplied, so a scan on several cores
    would leave all but one idle meanwhile: the row-wise passes (centring, norms, subtraction,
    scaling into a C-contiguous result) are done in chunks of :data:`_CHUNK_ROWS` rows spread
    over ``n_threads`` threads, fused where NumPy allows (no copy for the rows kept, no separate
    contiguous copy). The values are bit for bit those of :func:`residualize` followed by the
    division by the norm, whatever ``n_threads``.

    Parameters
    ----------
    phenotypes : array of shape (n_phenotypes, n_samples), no missing values
    q : array of shape (n_samples, rank)
    ids : sequence of str
        Phenotype IDs, for messages.
    n_threads : int, default 1

    Raises
    ------
    DataError
        If a phenotype has a missing or infinite value (the message names them).
    """
    values = np.asarray(phenotypes, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        bad = np.flatnonzero(~finite.all(axis=1))
        shown = ", ".join(repr(str(ids[i])) for i in bad[:10])
        raise DataError(
            f"{len(bad)} phenotype(s) have missing or infinite values ({shown}"
            f"{' ...' if len(bad) > 10 else ''}); a scan needs complete phenotypes: impute "
            "them or remove those rows (or those samples)"
        )
    n_rows = values.shape[0]
    chunks = [slice(start, min(n_rows, start + _CHUNK_ROWS))
              for start in range(0, n_rows, _CHUNK_ROWS)]
    centred = np.empty_like(values)  # the layout of ``values``, as ``residualize`` makes
    centred_norm = np.empty(n_rows)

    def centre(rows: slice) -> None:
        np.subtract(values[rows], values[rows].mean(axis=1, keepdims=True), out=centred[rows])
        centred_norm[rows] = np.linalg.norm(centred[rows], axis=1)

    parallel_map(centre, chunks, n_jobs=n_threads)
    # one product over every phenotype: OpenBLAS rounds a row of a product differently with
    # the number of rows, so chunking this would change the last bits of the scan's results
    projection = (centred @ q) @ q.T
    residuals = np.empty(values.shape)
    norm = np.empty(n_rows)

    def scale(rows: slice) -> None:
        part = centred[rows]
        part -= projection[rows]
        norm[rows] = np.linalg.norm(part, axis=1)
        # constant rows are dropped below; dividing them by 1 spares a warning
        divisor = np.where(norm[rows] <= ZERO_RESIDUAL * centred_norm[rows], 1.0, norm[rows])
        np.divide(part, divisor[:, None], out=residuals[rows])

    parallel_map(scale, chunks, n_jobs=n_threads)
    zero = norm <= ZERO_RESIDUAL * centred_norm
    kept = np.flatnonzero(~zero)
    if len(kept) < n_rows:
        residuals, norm = residuals[kept], norm[kept]
    return StandardizedPhenotypes(residuals, norm, kept, np.flatnonzero(zero))
