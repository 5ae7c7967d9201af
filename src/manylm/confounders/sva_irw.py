"""sva's default algorithm: iteratively re-weighted surrogate variable analysis.

Leek & Storey (2007, PLoS Genetics 3:e161) and Leek & Storey (2008, PNAS 105:18718), as sva's
``irwsva.build``: start from the leading right singular vectors of the residuals of the full
model; then, ``iterations`` times, estimate for every feature the probability that it is
associated with the surrogate variables (``pprob_gam``, F test of null + SVs against the null)
but not with the variables of interest (``1 - pprob_b``, F test of full + SVs against null +
SVs), both as 1 - local fdr; re-estimate the SVs as the leading right singular vectors of the
row-centred data weighted by ``pprob_gam (1 - pprob_b)``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from manylm.confounders.nested_models import f_statistics
from manylm.confounders.sva_blocks import (
    centred_gram,
    nested_residual_sums,
    orthonormal_chain,
    projected_residual_gram,
    top_eigenvectors,
)
from manylm.confounders.sva_lfdr import edge_lfdr
from manylm.errors import DataError

__all__ = ["irw_surrogates"]


def irw_surrogates(
    values: NDArray[np.floating],
    full: NDArray[np.float64],
    null: NDArray[np.float64],
    n_sv: int,
    *,
    iterations: int = 5,
    block_rows: int | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Surrogate variables by sva's iteratively re-weighted algorithm (``irwsva.build``).

    Parameters
    ----------
    values : array of shape (n_features, n_samples)
        Finite, no constant rows.
    full : array of shape (n_samples, p)
        Full model (``mod``), full rank.
    null : array of shape (n_samples, p0)
        Null model (``mod0``), nested in ``full``.
    n_sv : int
        Surrogate variables to estimate, 1 <= n_sv <= n_samples - p - 1.
    iterations : int
        Re-weighting steps (R's ``B = 5``).

    Returns
    -------
    surrogates : array of shape (n_samples, n_sv)
        Orthonormal columns.
    pprob_gam, pprob_b : arrays of shape (n_features,)
        Posterior probabilities of association with the surrogate variables and with the
        variables of interest, from the last iteration.
    """
    n_samples = values.shape[1]
    p_full, p_null = full.shape[1], null.shape[1]
    model = orthonormal_chain([full])[0]
    surrogates, _ = top_eigenvectors(projected_residual_gram(values, model,
                                                             block_rows=block_rows), n_sv)
    pprob_gam = pprob_b = np.full(values.shape[0], np.nan)
    for _ in range(iterations):
        chain = orthonormal_chain([null, np.hstack([null, surrogates]),
                                   np.hstack([full, surrogates])])
        if chain[1].shape[1] < n_sv or chain[2].shape[1] < p_full - p_null:
            raise DataError(
                "The surrogate variables have become linear combinations of the model's "
                f"columns; ask for fewer than {n_sv} surrogate variables.")
        rss_null, rss_null_sv, rss_full_sv = nested_residual_sums(values, chain,
                                                                  block_rows=block_rows)
        # Degrees of freedom as sva counts them: columns of mod + SVs and of mod0 + SVs.
        _, _, _, p_primary = f_statistics(rss_full_sv, n_samples - p_full - n_sv, rss_null_sv,
                                          n_samples - p_null - n_sv)
        _, _, _, p_surrogate = f_statistics(rss_null_sv, n_samples - p_null - n_sv, rss_null,
                                            n_samples - p_null)
        pprob_b = 1.0 - edge_lfdr(p_primary)
        pprob_gam = 1.0 - edge_lfdr(p_surrogate)
        weights = pprob_gam * (1.0 - pprob_b)
        surrogates, _ = top_eigenvectors(centred_gram(values, weights, block_rows=block_rows),
                                         n_sv)
    return surrogates, pprob_gam, pprob_b
