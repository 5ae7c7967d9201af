"""The consensus correlation between samples of the same block (limma's ``duplicateCorrelation``).

Smyth, Michaud & Scott (2005), Bioinformatics 21:2067. For every feature, the two variance
components of y = X b + (block effect) + e are estimated by REML, as statmod's
``mixedModel2Fit``: after projecting out the design, the squared coordinates of the residual
along the eigenvectors of Z'PZ (Z the block indicators) are independent, scaled chi-square on 1
df with mean sigma^2 + d tau^2 (d the eigenvalue), and are fitted by a gamma GLM with identity
link (statmod's ``glmgam.fit``: Levenberg-damped Fisher scoring, tolerance 1e-6, at most 20
iterations as limma asks). The correlation is tau^2 / (sigma^2 + tau^2); the consensus is the
tanh of the 15%-trimmed mean of their atanh.

Everything is batched over features: Z'PZ, Z'Py and y'Py come from the weighted block sums (so
missing values and weights are handled exactly, each feature on its own observed samples), the
eigen-decompositions are one batched call, and coordinates with eigenvalue zero share one mean
(they enter the likelihood only through their sum), so the damped iterations run on a few
numbers per feature at once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from manylm.design.estimability import constant_in_span
from manylm.errors import DesignError, ManylmWarning
from manylm.fit.block_sums import block_sums
from manylm.fit.blocked import block_indicators
from manylm.fit.weighted import BATCHED_RANK_TOLERANCE, _cholesky_solve, _cholesky_with_rank

__all__ = ["DuplicateCorrelation", "duplicate_correlation", "duplicate_correlation_arrays"]


@dataclass(frozen=True)
class DuplicateCorrelation:
    """Consensus intra-block correlation and each feature's atanh(correlation) (NaN if none)."""

    consensus: float
    atanh_correlations: NDArray[np.float64]


def duplicate_correlation(
    data: Any,
    design: Any,
    block: Any,
    *,
    samples: Any = None,
    weights: Any = None,
    trim: float = 0.15,
) -> DuplicateCorrelation:
    """The consensus intra-block correlation (limma's ``duplicateCorrelation(block=)``).

    Parameters
    ----------
    data : DataFrame or array, features x samples (NaN missing)
    design : Design, formula (with ``samples``) or samples x coefficients matrix
    block : sequence or Series
        The block (patient, litter...) of each sample of the design.
    weights : array, optional
        Per-sample or features x samples observation weights.
    """
    from manylm.design.matrix import Design, design_matrix
    from manylm.fit.lmfit import _align, _as_matrix, _block_labels, _weights

    matrix, feature_ids, sample_ids, obs = _as_matrix(data)
    if isinstance(design, str):
        sheet = samples if samples is not None else obs
        if sheet is None:
            raise DesignError("A formula design needs the sample sheet: pass samples=DataFrame.")
        design = design_matrix(design, sheet)
    elif not isinstance(design, Design):
        design = Design.from_matrix(design)
    matrix, aligned_ids, columns = _align(matrix, sample_ids, design)
    sample_weights, weight_matrix = _weights(weights, matrix.shape, columns, feature_ids,
                                             aligned_ids)
    labels = _block_labels(block, design, columns)
    return duplicate_correlation_arrays(
        np.asarray(matrix, dtype=np.float64), design.matrix, labels,
        weights=weight_matrix if weight_matrix is not None else sample_weights, trim=trim)


def duplicate_correlation_arrays(
    y: NDArray[np.floating],
    design: NDArray[np.floating],
    block: NDArray[np.object_],
    *,
    weights: NDArray[np.floating] | None = None,
    trim: float = 0.15,
    max_iterations: int = 20,
) -> DuplicateCorrelation:
    """Estimate the intra-block correlation from a features x samples matrix (NaN missing)."""
    from scipy import stats  # imported when used: ~0.3 s
    n_features, n_samples = y.shape
    blocks = block_indicators(block)
    sizes = blocks.sum(axis=0)
    if sizes.max() <= 1:
        raise DesignError(
            "Every block has a single sample, so there is no within-block correlation to "
            "estimate: the block column must group several samples (patients, litters...)."
        )
    q, _ = np.linalg.qr(design)
    leftover = blocks[:, 1:] - q @ (q.T @ blocks[:, 1:])
    if np.max(np.abs(leftover), initial=0.0) < 1e-8:
        warnings.warn("The block factor is already in the design: the correlation is set to 0.",
                      ManylmWarning, stacklevel=3)
        return DuplicateCorrelation(0.0, np.zeros(n_features))
    w = np.ones_like(y, dtype=np.float64) if weights is None else np.broadcast_to(
        np.asarray(weights, dtype=np.float64), y.shape).copy()
    w = np.where(np.isfinite(y) & (w > 0), w, 0.0)
    sums = block_sums(y, w, design, blocks, centre_rows=constant_in_span(design))

    # Project out the design: M = Z'PZ, v = Z'Py, s = y'Py for every feature.
    n_coef = design.shape[1]
    gram = np.ascontiguousarray(np.moveaxis(sums.xwx, 0, -1))
    lower, accepted = _cholesky_with_rank(gram, sums.n_observed, BATCHED_RANK_TOLERANCE)
    xz = np.moveaxis(sums.xzs, 1, 2)  # (G, p, b): X*'Z*
    rhs = np.concatenate([xz, sums.xwy[:, :, None]], axis=2)  # (G, p, b + 1)
    rhs = np.where(accepted.T[:, :, None], rhs, 0.0)
    solved = np.moveaxis(_cholesky_solve(lower, np.ascontiguousarray(np.moveaxis(rhs, 0, -1))),
                         -1, 0)  # (G, p, b + 1): A^-1 [X'Z, X'y]
    n_blocks = blocks.shape[1]
    v = sums.yzs - np.einsum("gpi,gp->gi", xz, solved[:, :, n_blocks])
    s = sums.ywy - np.einsum("gp,gp->g", sums.xwy, solved[:, :, n_blocks])
    rank = accepted.sum(axis=0)
    n_obs = sums.n_observed
    blocks_seen = (sums.n_in_block > 0).sum(axis=1)
    eligible = (n_obs > n_coef + 2) & (blocks_seen > 1) & (blocks_seen < n_obs - 1)

    # Z'PZ depends only on which samples a feature has and their weights: the features with
    # every sample and the common weights share one eigen-decomposition; the rest are batched.
    if weights is None or np.ndim(weights) == 1:
        common = np.ones(n_samples) if weights is None else np.asarray(weights, dtype=np.float64)
        shared = np.all(w == common[None, :], axis=1)
    else:
        shared = np.zeros(n_features, dtype=bool)
    eigenvalues = np.empty((n_features, n_blocks))
    coordinates = np.empty((n_features, n_blocks))
    own = np.flatnonzero(~shared)
    for rows, is_shared in ((own, False), (np.flatnonzero(shared), True)):
        if rows.size == 0:
            continue
        first = rows[:1] if is_shared else rows
        m = -np.einsum("gpi,gpj->gij", xz[first], solved[first, :, :n_blocks])
        m[:, np.arange(n_blocks), np.arange(n_blocks)] += sums.n_in_block[first]
        values, vectors = np.linalg.eigh(m)
        if is_shared:
            eigenvalues[rows] = values[0]
            coordinates[rows] = v[rows] @ vectors[0]
        else:
            eigenvalues[rows] = values
            coordinates[rows] = np.einsum("gbk,gb->gk", vectors, v[rows])
    top = np.max(eigenvalues, axis=1, keepdims=True)
    positive = eigenvalues > 1e-9 * np.maximum(top, 1e-300)
    with np.errstate(invalid="ignore", divide="ignore"):
        dy = np.where(positive, coordinates**2 / np.where(positive, eigenvalues, 1.0), 0.0)
    d = np.where(positive, eigenvalues, 0.0)
    n_positive = positive.sum(axis=1)
    mq = (n_obs - rank).astype(np.float64)
    zero_count = mq - n_positive
    zero_sum = np.maximum(s - dy.sum(axis=1), 0.0)
    # Observations: the positive-eigenvalue coordinates (count 1) and one group for d = 0.
    obs_d = np.concatenate([d, np.zeros((n_features, 1))], axis=1)
    obs_count = np.concatenate([positive.astype(np.float64), zero_count[:, None]], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        obs_y = np.concatenate([dy, (zero_sum / np.where(zero_count > 0, zero_count, 1))[:, None]],
                               axis=1)
    obs_count = np.where(eligible[:, None], obs_count, 0.0)
    varcomp = _fit_variance_components(obs_d, obs_y, obs_count, mq, n_positive, max_iterations)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = varcomp[:, 1] / varcomp.sum(axis=1)
    rho = np.where(eligible, rho, np.nan)
    rho_min = 1 / (1 - sizes.max()) + 0.01
    rho = np.clip(rho, rho_min, 0.99)
    atanh = np.arctanh(rho)
    finite = atanh[~np.isnan(atanh)]
    consensus = float(np.tanh(stats.trim_mean(finite, trim))) if finite.size else float("nan")
    return DuplicateCorrelation(consensus, atanh)


def _fit_variance_components(d: NDArray[np.floating], y: NDArray[np.floating],
                             count: NDArray[np.floating], mq: NDArray[np.floating],
                             n_positive: NDArray[np.int_], max_iterations: int,
                             tol: float = 1e-6) -> NDArray[np.floating]:
    """(sigma^2, tau^2) per feature: statmod's start by least squares, then ``glmgam.fit``."""
    n_features = d.shape[0]
    # Least-squares start over the grouped observations (statmod's lm.fit(dx, dy)).
    s0, s1, s2 = count.sum(axis=1), (count * d).sum(axis=1), (count * d * d).sum(axis=1)
    t0, t1 = (count * y).sum(axis=1), (count * d * y).sum(axis=1)
    det = s0 * s2 - s1 * s1
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = np.stack([(s2 * t0 - s1 * t1) / det, (s0 * t1 - s1 * t0) / det], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_d = s1 / mq
        variance_d = (s2 - mq * mean_d**2) / (mq - 1)
    use_glm = (mq > 2) & (n_positive > 1) & (variance_d > 1e-15)
    fitted = beta[:, :1] + beta[:, 1:] * d
    nonnegative = np.all((fitted >= 0) | (count == 0), axis=1)
    start = np.where(nonnegative[:, None], beta,
                     np.stack([t0 / np.where(mq > 0, mq, 1), np.zeros(n_features)], axis=1))
    result = beta.copy()
    glm = use_glm & (t0 > 0) & np.all(np.isfinite(start), axis=1)
    result[use_glm & (t0 <= 0)] = 0.0
    if glm.any():
        result[glm] = _glmgam(d[glm], y[glm], count[glm], start[glm], max_iterations, tol)
    return result


def _glmgam(d: NDArray[np.floating], y: NDArray[np.floating], count: NDArray[np.floating],
            beta: NDArray[np.floating], max_iterations: int, tol: float) -> NDArray[np.floating]:
    """statmod's ``glmgam.fit`` (gamma GLM, identity link, columns (1, d)), batched."""
    beta = beta.copy()
    present = count > 0

    def means(b: NDArray[np.floating]) -> NDArray[np.floating]:
        return b[:, :1] + b[:, 1:] * d

    def deviance(mu: NDArray[np.floating], rows: NDArray[np.intp]) -> NDArray[np.floating]:
        # The gamma deviance up to a constant in y (which cancels in every comparison).
        with np.errstate(invalid="ignore", divide="ignore"):
            terms = np.where(present[rows], count[rows] * ((y[rows] - mu) / mu + np.log(mu)),
                             0.0)
        value = 2 * terms.sum(axis=1)
        negative = np.any(present[rows] & (mu < 0), axis=1)
        return np.where(negative, np.inf, value)

    def scaled(dev: NDArray[np.floating], mu: NDArray[np.floating],
               rows: NDArray[np.intp]) -> NDArray[np.floating]:
        # R's dev / max(mu) < 1e-15 test needs the full deviance: add the constant back.
        with np.errstate(invalid="ignore", divide="ignore"):
            positive_y = np.where(y[rows] > 0, y[rows], 1.0)
            constant = -2 * np.where(present[rows], count[rows] * np.log(positive_y),
                                     0.0).sum(axis=1)
            return (dev + constant) / np.max(np.where(present[rows], mu, -np.inf), axis=1)

    everything = np.arange(beta.shape[0])
    mu = means(beta)
    dev = deviance(mu, everything)
    n = beta.shape[0]
    lam = np.zeros(n)
    active = np.ones(n, dtype=bool)
    for iteration in range(1, max_iterations + 2):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        mu_a = mu[idx]
        var = np.where(present[idx], mu_a**2, 0.0)
        var = np.maximum(var, np.max(var, axis=1, keepdims=True) / 1e3)
        weight = np.where(present[idx], count[idx] / var, 0.0)
        i00 = weight.sum(axis=1)
        i01 = (weight * d[idx]).sum(axis=1)
        i11 = (weight * d[idx] ** 2).sum(axis=1)
        max_info = np.maximum(i00, i11)
        if iteration == 1:
            lam[idx] = np.abs((i00 + i11) / 2) / 2
        residual = np.where(present[idx], count[idx] * (y[idx] - mu_a) / var, 0.0)
        g0 = residual.sum(axis=1)
        g1 = (residual * d[idx]).sum(axis=1)
        beta_old = beta[idx].copy()
        dev_old = dev[idx].copy()
        levels = np.zeros(idx.size, dtype=int)
        searching = np.ones(idx.size, dtype=bool)
        gave_up = np.zeros(idx.size, dtype=bool)
        step = np.zeros((idx.size, 2))
        while searching.any():
            k = np.flatnonzero(searching)
            rows = idx[k]
            levels[k] += 1
            a00, a11 = i00[k] + lam[rows], i11[k] + lam[rows]
            det = a00 * a11 - i01[k] ** 2
            step[k, 0] = (a11 * g0[k] - i01[k] * g1[k]) / det
            step[k, 1] = (a00 * g1[k] - i01[k] * g0[k]) / det
            candidate = beta_old[k] + step[k]
            beta[rows] = candidate
            mu[rows] = candidate[:, :1] + candidate[:, 1:] * d[rows]
            dev[rows] = deviance(mu[rows], rows)
            accept = (dev[rows] <= dev_old[k]) | (scaled(dev[rows], mu[rows], rows) < 1e-15)
            too_damped = ~accept & (lam[rows] / max_info[k] > 1e15)
            beta[rows[too_damped]] = beta_old[k[too_damped]]
            gave_up[k[too_damped]] = True
            retry = ~accept & ~too_damped
            lam[rows[retry]] *= 2
            searching[k[accept | too_damped]] = False
        done = gave_up | (lam[idx] / max_info > 1e15)
        lam[idx[levels == 1]] /= 10
        progress = step[:, 0] * g0 + step[:, 1] * g1
        done |= (progress < tol) | (scaled(dev[idx], mu[idx], idx) < 1e-15)
        done |= iteration > max_iterations
        active[idx[done]] = False
    return beta
