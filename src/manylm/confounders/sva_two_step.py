"""Two-step and supervised surrogate variable analysis.

* Two-step (Leek & Storey 2007, sec. 2, as sva's ``twostepsva.build``): the leading right
  singular vectors of the residuals of the full model; for each, the features significantly
  associated with it (local fdr < 0.1 in an F test of ``~ 1 + vector`` against ``~ 1``); the
  surrogate variable is the right singular vector of those features' row-centred data most
  correlated with it. A vector supported by fewer features than there are samples is dropped.
* Supervised (Leek 2014, Nucleic Acids Research 42:e161, as sva's ``ssva``): the leading right
  singular vectors of the row-centred data weighted by each feature's probability of being a
  control (affected by the unwanted factors only).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from manylm.confounders.nested_models import f_statistics
from manylm.confounders.sva_blocks import (
    centred_gram,
    map_row_blocks,
    orthonormal_chain,
    projected_residual_gram,
    top_eigenvectors,
)
from manylm.confounders.sva_lfdr import edge_lfdr

__all__ = ["SIGNIFICANT_LFDR", "supervised_surrogates", "two_step_surrogates"]

SIGNIFICANT_LFDR = 0.1  # twostepsva.build: features with lfdr below this carry a vector


def two_step_surrogates(
    values: NDArray[np.floating],
    full: NDArray[np.float64],
    n_sv: int,
    *,
    block_rows: int | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Surrogate variables by sva's two-step algorithm (``twostepsva.build``).

    Parameters
    ----------
    values : array of shape (n_features, n_samples)
        Finite, no constant rows.
    full : array of shape (n_samples, p)
        Full model, full rank.
    n_sv : int
        Residual singular vectors to start from, 1 <= n_sv <= n_samples - p.

    Returns
    -------
    surrogates : array of shape (n_samples, k), k <= n_sv
        Vectors supported by fewer features than samples are dropped (k may be 0).
    pprob_gam : array of shape (n_features,)
        1.0 for the features significantly associated with a kept vector, else 0.0.

    Notes
    -----
    As in R, after vectors are dropped the i-th kept set of features is compared with the i-th
    residual singular vector (not the one that selected it); this only matters when a vector
    other than the last ones is dropped.
    """
    n_features, n_samples = values.shape
    model = orthonormal_chain([full])[0]
    residual_vectors, _ = top_eigenvectors(
        projected_residual_gram(values, model, block_rows=block_rows), n_sv)
    rss_intercept, rss_each = _single_vector_rss(values, residual_vectors, block_rows)
    significant = np.empty((n_features, n_sv), dtype=bool)
    for i in range(n_sv):
        _, _, _, p_value = f_statistics(rss_each[i], n_samples - 2, rss_intercept,
                                        n_samples - 1)
        significant[:, i] = edge_lfdr(p_value) < SIGNIFICANT_LFDR
    kept = [i for i in range(n_sv) if significant[:, i].sum() >= n_samples]
    if not kept:
        return np.zeros((n_samples, 0)), np.zeros(n_features)
    surrogates = np.zeros((n_samples, len(kept)))
    for position, column in enumerate(kept):
        gram = centred_gram(values, rows=significant[:, column], block_rows=block_rows)
        candidates, _ = top_eigenvectors(gram, n_samples - 1)
        target = residual_vectors[:, position]
        correlation = np.abs([_correlation(candidates[:, j], target)
                              for j in range(n_samples - 1)])
        best = int(np.argmax(correlation))  # the first of equal maxima, as R's strict '>'
        if correlation[best] > 0:
            surrogates[:, position] = candidates[:, best]
    return surrogates, np.asarray(significant[:, kept].any(axis=1), dtype=np.float64)


def supervised_surrogates(
    values: NDArray[np.floating],
    controls: NDArray[np.float64],
    n_sv: int,
    *,
    block_rows: int | None = None,
) -> NDArray[np.float64]:
    """Surrogate variables from control probabilities (sva's ``ssva``).

    Parameters
    ----------
    values : array of shape (n_features, n_samples)
    controls : array of shape (n_features,)
        Probability, in [0, 1], that each feature is a control.
    n_sv : int
        1 <= n_sv <= n_samples - 1.

    Returns
    -------
    array of shape (n_samples, n_sv)
    """
    gram = centred_gram(values, controls, block_rows=block_rows)
    surrogates, _ = top_eigenvectors(gram, n_sv)
    return surrogates


def _single_vector_rss(values: NDArray[np.floating], vectors: NDArray[np.float64],
                       block_rows: int | None
                       ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """RSS of ``~ 1`` and, for each vector v_i, of ``~ 1 + v_i``, for every feature."""
    n_features, n_samples = values.shape
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    directions = centred / np.linalg.norm(centred, axis=0, keepdims=True)
    rss_intercept = np.empty(n_features)
    rss_each = np.empty((vectors.shape[1], n_features))

    def run(block: slice) -> None:
        y = np.array(values[block], dtype=np.float64)
        y -= y.mean(axis=1, keepdims=True)
        rss_intercept[block] = np.einsum("ij,ij->i", y, y)
        effects = y @ directions
        for i in range(directions.shape[1]):
            residuals = y - effects[:, i:i + 1] * directions[:, i]
            rss_each[i, block] = np.einsum("ij,ij->i", residuals, residuals)

    map_row_blocks(run, n_features, n_samples, block_rows)
    return rss_intercept, rss_each


def _correlation(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    a, b = a - a.mean(), b - b.mean()
    scale = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / scale if scale > 0 else 0.0
