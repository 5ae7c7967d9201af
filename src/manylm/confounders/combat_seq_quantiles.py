"""Quantile matching of counts between two negative binomial distributions (ComBat-seq's last
step, sva's ``match_quantiles``).

Zhang, Parmigiani & Johnson (2020), "ComBat-seq: batch effect adjustment for RNA-seq count
data", NAR Genomics and Bioinformatics 2(3):lqaa078, section 2.3. A count y > 1 drawn from
NB(mu, phi) is mapped to 1 + the quantile, under the batch-free NB(mu*, phi*), of
P(Y <= y - 1); counts 0 and 1, and counts so far in the tail that P(Y <= y - 1) is within 1e-4
of 1, are kept. Quantiles follow R's ``qnbinom``: the smallest k with P(K <= k) >= p (1 - 8 eps).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.special import betainc, ndtri

__all__ = ["match_quantiles", "nb_cdf", "nb_quantile"]

_FUZZ = 1 - 8 * np.finfo(float).eps  # R's left-continuity fuzz in its discrete quantiles


def nb_cdf(k: NDArray[np.float64], mu: NDArray[np.float64],
           size: NDArray[np.float64]) -> NDArray[np.float64]:
    """P(K <= k) for K ~ NB(mean mu, size): the regularised incomplete beta function
    I_{size / (size + mu)}(size, k + 1), as R's ``pnbinom(k, size, mu = mu)``."""
    k = np.floor(k + 1e-7)
    with np.errstate(invalid="ignore"):
        return np.where(k < 0, 0.0, betainc(size, k + 1, size / (size + mu)))


def nb_quantile(p: NDArray[np.float64], mu: NDArray[np.float64],
                size: NDArray[np.float64]) -> NDArray[np.float64]:
    """Smallest integer k with P(K <= k) >= p (1 - 8 eps), K ~ NB(mu, size) (R's ``qnbinom``).

    Starts from the Cornish-Fisher approximation R uses, then walks (by doubling steps, then
    bisection) to the exact integer; only the values still moving are evaluated.
    """
    target = p * _FUZZ
    prob_over = mu / size
    sigma = np.sqrt(size * prob_over * (1 + prob_over))
    skew = (1 + 2 * prob_over) / sigma
    z = ndtri(p)
    high = np.maximum(np.round(mu + sigma * (z + skew * (z * z - 1) / 6)), 0.0)

    def reached(k: NDArray[np.float64], at: NDArray[np.intp]) -> NDArray[np.bool_]:
        return nb_cdf(k, mu[at], size[at]) >= target[at]

    # Bracket each answer: cdf(low) < target <= cdf(high); low = -1 stands for "below 0".
    step = np.ones_like(high)
    moving = np.flatnonzero(~reached(high, np.arange(high.size)))
    while moving.size:
        high[moving] += step[moving]
        step[moving] *= 2
        moving = moving[~reached(high[moving], moving)]
    low = high - 1
    step[:] = 1
    moving = np.flatnonzero(low >= 0)
    moving = moving[reached(low[moving], moving)]
    while moving.size:
        high[moving] = low[moving]
        low[moving] = np.maximum(low[moving] - step[moving], -1)
        step[moving] *= 2
        moving = moving[low[moving] >= 0]
        moving = moving[reached(low[moving], moving)]
    moving = np.flatnonzero(high - low > 1)
    while moving.size:
        middle = np.floor((low[moving] + high[moving]) / 2)
        hit = reached(middle, moving)
        high[moving[hit]] = middle[hit]
        low[moving[~hit]] = middle[~hit]
        moving = moving[high[moving] - low[moving] > 1]
    return high


def match_quantiles(counts: NDArray[np.float64], old_mu: NDArray[np.float64],
                    old_dispersion: NDArray[np.float64], new_mu: NDArray[np.float64],
                    new_dispersion: NDArray[np.float64]) -> NDArray[np.float64]:
    """Map counts (n_genes x n_samples) from NB(old_mu, old_dispersion) to NB(new_mu,
    new_dispersion); dispersions broadcast against the counts (e.g. shape (n_genes, 1))."""
    old_size = np.broadcast_to(1 / old_dispersion, counts.shape)
    new_size = np.broadcast_to(1 / new_dispersion, counts.shape)
    adjusted = counts.copy()
    cells = counts > 1
    tail = nb_cdf(counts[cells] - 1, old_mu[cells], old_size[cells])
    moved = np.abs(tail - 1) >= 1e-4
    cell_index = np.flatnonzero(cells.ravel())[moved]
    flat = adjusted.reshape(-1)
    flat[cell_index] = 1 + nb_quantile(tail[moved], new_mu.reshape(-1)[cell_index],
                                       new_size.reshape(-1)[cell_index])
    return adjusted
