"""Non-parametric ComBat posteriors: every other feature's estimates as the empirical prior.

Johnson, Li & Rabinovic (2007), Biostatistics 8:118-127, section 3.3 (sva's ``int.eprior``).
Within one batch, feature i's posterior effects are averages of the other features' estimates
(gamma_j, delta2_j), each weighted by the normal likelihood of feature i's standardised values
under them:

    L_ij = (2 pi delta2_j)^(-n_i/2) exp(-sum_k (x_ik - gamma_j)^2 / (2 delta2_j)),   j != i.

That is a features x features matrix per batch, so it is built in blocks of rows (memory stays
at one block per thread), never whole. Its logarithm has rank 3,

    log L_ij = n_i A_j + S_i B_j + n_i m_i C_j,

with the batch mean m_i and sum of squares S_i of feature i (both centred on a common constant,
for accuracy), A_j = -log(2 pi d_j)/2 - g_j^2/(2 d_j), B_j = -1/(2 d_j), C_j = g_j/d_j. A
compiled pass writes each block of log-likelihoods minus its row maximum, NumPy exponentiates it
(vectorised), and a second compiled pass forms the three weighted sums. sva evaluates L_ij
itself, which underflows to 0 (giving NaN) when a batch has many samples; wherever sva gets a
number the two agree to rounding.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from manylm.parallel import parallel_map

__all__ = ["nonparametric_posteriors"]

#: Target size of one block of likelihoods (rows x features x 8 bytes): cache-sized.
BLOCK_BYTES = 2 * 2**20

_FAST = {"reassoc", "contract", "nsz", "arcp"}  # no "ninf": -inf marks the excluded feature


def nonparametric_posteriors(
    n_observed: NDArray[np.float64],
    mean: NDArray[np.float64],
    sum_squares: NDArray[np.float64],
    gamma_hat: NDArray[np.float64],
    delta_hat: NDArray[np.float64],
    *,
    block_rows: int | None = None,
    n_jobs: int | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Posterior additive and multiplicative effects of one batch.

    Parameters
    ----------
    n_observed, mean, sum_squares : arrays of shape (n_features,)
        Observed count, mean and centred sum of squares of each feature's standardised values in
        the batch.
    gamma_hat, delta_hat : arrays of shape (n_features,)
        The features' own estimates (``delta_hat`` all ones for mean-only ComBat).
    block_rows : int, optional
        Features per block (default: about 2 MB of likelihoods per block).
    n_jobs : int, optional
        Worker threads (default: every core).

    Returns
    -------
    gamma_star, delta_star : arrays of shape (n_features,)
    """
    n_features = gamma_hat.size
    usable = np.isfinite(delta_hat) & (delta_hat > 0) & np.isfinite(gamma_hat)
    prior_rows = np.flatnonzero(usable)
    # Each feature's own position among the prior features (-1: it is not one of them).
    own = np.full(n_features, -1, dtype=np.int64)
    own[prior_rows] = np.arange(prior_rows.size)
    centre = float(np.median(gamma_hat[usable])) if usable.any() else 0.0
    gamma, delta = gamma_hat[usable], delta_hat[usable]
    shifted = gamma - centre
    prior_a = np.ascontiguousarray(-0.5 * np.log(2 * np.pi * delta) - shifted**2 / (2 * delta))
    prior_b = np.ascontiguousarray(-1.0 / (2 * delta))
    prior_c = np.ascontiguousarray(shifted / delta)
    data_shift = mean - centre
    data_terms = np.ascontiguousarray(np.column_stack(
        [n_observed, sum_squares + n_observed * data_shift**2, n_observed * data_shift]))
    rows = block_rows or max(1, BLOCK_BYTES // (8 * max(prior_rows.size, 1)))
    starts = list(range(0, n_features, rows))

    def block(start: int) -> NDArray[np.float64]:
        stop = min(start + rows, n_features)
        weights = np.empty((stop - start, prior_rows.size))
        _log_weights(data_terms[start:stop], prior_a, prior_b, prior_c, own[start:stop],
                     weights)
        np.exp(weights, out=weights)
        sums = np.empty((stop - start, 3))
        _weighted_sums(weights, gamma, delta, sums)
        return sums

    sums = np.vstack(parallel_map(block, starts, n_jobs=n_jobs))
    with np.errstate(divide="ignore", invalid="ignore"):
        return sums[:, 0] / sums[:, 2], sums[:, 1] / sums[:, 2]


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _log_weights(data_terms, prior_a, prior_b, prior_c, own, out):  # pragma: no cover - compiled
    """out[r, j] = log L_rj - max_j log L_rj, with -inf for the feature itself."""
    n_rows, n_prior = out.shape
    for r in range(n_rows):
        count, squares, total = data_terms[r, 0], data_terms[r, 1], data_terms[r, 2]
        row = out[r]
        best = -np.inf
        for j in range(n_prior):
            value = count * prior_a[j] + squares * prior_b[j] + total * prior_c[j]
            row[j] = value
            best = max(best, value)
        self_index = own[r]
        if self_index >= 0:
            if row[self_index] >= best:  # the maximum was the feature itself: look again
                best = -np.inf
                for j in range(n_prior):
                    if j != self_index:
                        best = max(best, row[j])
            row[self_index] = -np.inf
        for j in range(n_prior):
            row[j] -= best


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _weighted_sums(weights, gamma, delta, out):  # pragma: no cover - compiled
    """Per row: sum_j w_j gamma_j, sum_j w_j delta_j, sum_j w_j."""
    n_rows, n_prior = weights.shape
    for r in range(n_rows):
        row = weights[r]
        sum_gamma = 0.0
        sum_delta = 0.0
        sum_weight = 0.0
        for j in range(n_prior):
            w = row[j]
            sum_gamma += w * gamma[j]
            sum_delta += w * delta[j]
            sum_weight += w
        out[r, 0] = sum_gamma
        out[r, 1] = sum_delta
        out[r, 2] = sum_weight
