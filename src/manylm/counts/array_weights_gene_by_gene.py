"""Sample quality weights by limma's gene-by-gene update (``arrayWeights(method = "genebygene")``).

Ritchie et al. (2006), BMC Bioinformatics 7:261, section "Gene-by-gene update algorithm". The
log weights are linear in a variance design Z2 (by default the sum-to-zero contrasts of the
samples, one free weight per sample). Starting from equal weights and a prior information of
``prior_n`` genes, the genes are visited once, in order; each gene's weighted fit gives a score
and an information increment, and the log weights take one Fisher-scoring step. The update of
gene i uses the weights left by gene i - 1, so the pass is sequential by construction: it runs as
one compiled loop (numba), not as a Python loop over genes.

This is the method limma's ``voomWithQualityWeights`` uses, and the one ``arrayWeights`` picks
when the data carry missing values or prior weights.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

__all__ = ["gene_by_gene_weights"]

#: Rank tolerance of R's dqrdc2, as used by lm.wfit.
_QR_TOLERANCE = 1e-7


def gene_by_gene_weights(
    values: NDArray[np.float64],
    design: NDArray[np.float64],
    variance_design: NDArray[np.float64] | None = None,
    prior_weights: NDArray[np.float64] | None = None,
    *,
    prior_n: float = 10.0,
) -> NDArray[np.float64]:
    """Array weights by one sequential pass over the genes (limma ``.arrayWeightsGeneByGene``).

    Parameters
    ----------
    values : array of shape (n_genes, n_samples)
        Expression values; NaN marks a missing value (that gene is fitted on its other samples
        and skipped when it has fewer than three, or fewer than two residual df).
    design : array of shape (n_samples, n_coefficients), full column rank
    variance_design : array of shape (n_samples, n_gamma), optional
        Centred variance design Z2; default: the sum-to-zero contrasts of the samples.
    prior_weights : array of shape (n_genes, n_samples), optional
        Observation weights multiplied by the current sample weights in each gene's fit.
    prior_n : float
        Prior information, in genes, that the weights equal one.

    Returns
    -------
    array of shape (n_samples,)
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    design = np.ascontiguousarray(design, dtype=np.float64)
    n_samples = values.shape[1]
    sum_contrasts = variance_design is None
    if variance_design is None:
        variance_design = np.vstack([np.eye(n_samples - 1), -np.ones((1, n_samples - 1))])
    z2 = np.ascontiguousarray(variance_design, dtype=np.float64)
    has_prior = prior_weights is not None
    prior = (np.ascontiguousarray(prior_weights, dtype=np.float64) if has_prior
             else np.ones((1, 1)))
    return _gene_by_gene(values, design, z2, prior, has_prior, sum_contrasts, float(prior_n))


@numba.njit(cache=True)
def _gene_by_gene(values, design, z2, prior, has_prior, sum_contrasts, prior_n):
    n_genes, n_samples = values.shape
    n_gamma = z2.shape[1]
    gamma = np.zeros(n_gamma)
    sample_weights = np.ones(n_samples)
    info2 = prior_n * (z2.T @ z2)
    leverage_complement = np.empty(n_samples)
    scaled_squares = np.empty(n_samples)
    for gene in range(n_genes):
        y = values[gene]
        observed = np.isfinite(y)
        n_observed = int(observed.sum())
        if n_observed <= 2:
            continue
        w = sample_weights * prior[gene] if has_prior else sample_weights.copy()
        rank, rss = _weighted_fit(design, y, w, observed, leverage_complement, scaled_squares)
        df = n_observed - rank
        if n_observed < n_samples and df < 2:
            continue
        s2 = rss / df
        if s2 < 1e-15:
            continue
        h = leverage_complement
        total = 0.0
        for j in range(n_samples):
            total += h[j]
        if sum_contrasts:
            last = h[n_samples - 1]
            for a in range(n_gamma):
                da = h[a] - last
                for b in range(n_gamma):
                    info2[a, b] += last - da * (h[b] - last) / total
                info2[a, a] += h[a]
        else:
            column_sums = z2.T @ h
            weighted = z2 * h.reshape((n_samples, 1))
            info2 += z2.T @ weighted - np.outer(column_sums, column_sums) / total
        score_terms = np.empty(n_samples)
        for j in range(n_samples):
            score_terms[j] = scaled_squares[j] / s2 - h[j]
        gamma += np.linalg.solve(info2, z2.T @ score_terms)
        sample_weights = np.exp(-(z2 @ gamma))
    return sample_weights


@numba.njit(cache=True)
def _weighted_fit(design, y, w, observed, leverage_complement, scaled_squares):
    """One gene's weighted least-squares fit on its observed samples (as R's lm.wfit).

    Householder QR of sqrt(w) X with dqrdc2's rule: a column whose remaining norm falls below
    1e-7 of its original norm is left out. Fills ``leverage_complement`` with 1 - hat (0 where
    unobserved) and ``scaled_squares`` with w * residual^2 (0 where unobserved); returns the
    rank and the weighted residual sum of squares.
    """
    n_samples, n_coef = design.shape
    rows = np.nonzero(observed)[0]
    n = rows.size
    a = np.empty((n, n_coef))
    effects = np.empty(n)
    root_w = np.empty(n)
    for i in range(n):
        root_w[i] = np.sqrt(w[rows[i]])
        effects[i] = root_w[i] * y[rows[i]]
        for j in range(n_coef):
            a[i, j] = root_w[i] * design[rows[i], j]
    reflectors = np.zeros((n, n_coef))
    rank = 0
    for j in range(n_coef):
        original = 0.0
        for i in range(n):
            original += (root_w[i] * design[rows[i], j]) ** 2
        remaining = 0.0
        for i in range(rank, n):
            remaining += a[i, j] ** 2
        if rank >= n or original == 0.0 or np.sqrt(remaining) < _QR_TOLERANCE * np.sqrt(original):
            continue
        # Householder vector v (stored in reflectors[:, rank]) with (I - 2 v v') a_j = -s e_rank.
        norm = np.sqrt(remaining)
        if a[rank, j] < 0:
            norm = -norm
        v = reflectors[:, rank]
        for i in range(rank, n):
            v[i] = a[i, j]
        v[rank] += norm
        vnorm2 = 0.0
        for i in range(rank, n):
            vnorm2 += v[i] ** 2
        for i in range(rank, n):
            v[i] /= np.sqrt(vnorm2)
        for k in range(j, n_coef):
            dot = 0.0
            for i in range(rank, n):
                dot += v[i] * a[i, k]
            for i in range(rank, n):
                a[i, k] -= 2.0 * dot * v[i]
        dot = 0.0
        for i in range(rank, n):
            dot += v[i] * effects[i]
        for i in range(rank, n):
            effects[i] -= 2.0 * dot * v[i]
        rank += 1
    rss = 0.0
    for i in range(rank, n):
        rss += effects[i] ** 2
    # Weighted residuals: Q applied to the effects beyond the rank. Leverages: row norms of Q1.
    residual = np.zeros(n)
    for i in range(rank, n):
        residual[i] = effects[i]
    q1 = np.zeros((n, rank))
    for k in range(rank):
        q1[k, k] = 1.0
    for r in range(rank - 1, -1, -1):
        v = reflectors[:, r]
        dot = 0.0
        for i in range(r, n):
            dot += v[i] * residual[i]
        for i in range(r, n):
            residual[i] -= 2.0 * dot * v[i]
        for k in range(rank):
            dot = 0.0
            for i in range(r, n):
                dot += v[i] * q1[i, k]
            for i in range(r, n):
                q1[i, k] -= 2.0 * dot * v[i]
    for j in range(n_samples):
        leverage_complement[j] = 0.0
        scaled_squares[j] = 0.0
    for i in range(n):
        hat = 0.0
        for k in range(rank):
            hat += q1[i, k] ** 2
        leverage_complement[rows[i]] = 1.0 - hat
        scaled_squares[rows[i]] = residual[i] ** 2
    return rank, rss
