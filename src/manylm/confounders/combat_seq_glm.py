"""Negative binomial GLM fits of every gene, as ComBat-seq gets them from edgeR.

The model is log(mu_gj) = x_j' beta_g + offset_gj with variance mu + phi mu^2 (McCarthy, Chen &
Smyth 2012, Nucleic Acids Research 40:4288-4297). Fitted as edgeR 3.40's ``glmFit`` does, for
all genes at once:

* a one-way layout (each distinct design row a group): a Newton iteration for each group's log
  mean (edgeR's ``mglmOneGroup``, start log(mean(y / N)), steps until |step| < 1e-10);
* any other design: Fisher scoring with Levenberg damping (edgeR's ``mglmLevenberg``): start from
  the intercept-only fit, damping 1e-6 times the largest information, halved/doubled as the
  deviance falls/rises, stopped when the score times the step is below 1e-6;
* ``prior_count > 0``: coefficients from the counts plus prior counts scaled by library size
  (edgeR's ``addPriorCount`` and ``predFC``), fitted values from the raw counts.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["fit_nb_glm", "fit_one_group", "nb_deviance", "one_way_groups"]

LOW_VALUE = 1e-10
LOG_2 = float(np.log(2.0))


def nb_deviance(y: NDArray[np.float64], mu: NDArray[np.float64],
                dispersion: NDArray[np.float64]) -> NDArray[np.float64]:
    """Unit negative binomial deviances, with edgeR's guards (Poisson-like below phi = 1e-4,
    gamma-like above mu phi = 1e6, 1e-8 added to y and mu)."""
    y = y + 1e-8
    mu = mu + 1e-8
    phi = np.broadcast_to(dispersion, y.shape)
    inverse = 1 / phi
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_log = np.log(y / mu)
        deviance = 2 * (y * ratio_log + (y + inverse) * np.log((mu + inverse) / (y + inverse)))
    poisson_like = phi < 1e-4
    gamma_like = ~poisson_like & (mu * phi > 1e6)
    if poisson_like.any():
        y_p, mu_p, phi_p = y[poisson_like], mu[poisson_like], phi[poisson_like]
        residual = y_p - mu_p
        # edgeR's series in phi has 2/3 written in integer arithmetic, i.e. 0
        deviance[poisson_like] = 2 * (y_p * ratio_log[poisson_like] - residual - 0.5 * residual
                                      * residual * phi_p * (1 + phi_p * (-y_p)))
    if gamma_like.any():
        y_g, mu_g = y[gamma_like], mu[gamma_like]
        deviance[gamma_like] = (2 * ((y_g - mu_g) / mu_g - ratio_log[gamma_like]) * mu_g
                                / (1 + mu_g * phi[gamma_like]))
    return deviance


def fit_one_group(y: NDArray[np.float64], offset: NDArray[np.float64],
                  dispersion: NDArray[np.float64], *, max_iterations: int = 50,
                  tolerance: float = 1e-10) -> NDArray[np.float64]:
    """Log mean of each row of ``y`` (n_genes x n_samples) under one group (edgeR's
    ``mglmOneGroup``); -inf for a row of zeros."""
    offset = np.broadcast_to(offset, y.shape)
    dispersion = np.broadcast_to(dispersion, y.shape)
    library = np.exp(offset)
    with np.errstate(divide="ignore"):
        beta = np.log(np.where(y > LOW_VALUE, y / library, 0.0).sum(axis=1) / y.shape[1])
    active = np.flatnonzero(np.isfinite(beta))
    for _ in range(max_iterations):
        if active.size == 0:
            break
        mu = np.exp(beta[active, None] + offset[active])
        denominator = 1 + mu * dispersion[active]
        score = ((y[active] - mu) / denominator).sum(axis=1)
        information = (mu / denominator).sum(axis=1)
        step = score / information
        beta[active] += step
        active = active[np.abs(step) >= tolerance]
    return beta


def one_way_groups(design: NDArray[np.float64]) -> tuple[NDArray[np.float64],
                                                           NDArray[np.intp]] | None:
    """The distinct rows of ``design`` and each sample's row, if there are as many distinct rows
    as columns (a one-way layout, edgeR's ``designAsFactor`` test); otherwise None."""
    unique, group = np.unique(design, axis=0, return_inverse=True)
    if unique.shape[0] != design.shape[1]:
        return None
    return unique, group.reshape(-1)


def fit_nb_glm(y: NDArray[np.float64], design: NDArray[np.float64],
               offset: NDArray[np.float64], dispersion: NDArray[np.float64], *,
               prior_count: float = 0.0) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Coefficients (n_genes x n_coefficients) and fitted means (n_genes x n_samples).

    Parameters
    ----------
    y : array of shape (n_genes, n_samples)
        Counts.
    design : array of shape (n_samples, n_coefficients)
        Full column rank.
    offset : array broadcastable to (n_genes, n_samples)
        Log library sizes (and any other offset).
    dispersion : array broadcastable to (n_genes, n_samples)
    prior_count : float
        When positive, the coefficients are those of edgeR's ``predFC`` with this prior count
        (on the natural-log scale, as ``glmFit`` reports them); the fitted values are unshrunk.
    """
    offset = np.broadcast_to(offset, y.shape)
    dispersion = np.broadcast_to(dispersion, y.shape)
    coefficients, fitted = _fit(y, design, offset, dispersion)
    if prior_count > 0:
        shrunk_y, shrunk_offset = _add_prior_count(y, offset, prior_count)
        shrunk, _ = _fit(shrunk_y, design, shrunk_offset, dispersion)
        coefficients = shrunk / LOG_2 * LOG_2  # predFC's log2 scale and back, as glmFit does
    return coefficients, fitted


def _fit(y: NDArray[np.float64], design: NDArray[np.float64], offset: NDArray[np.float64],
         dispersion: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    layout = one_way_groups(design)
    if layout is None:
        return _levenberg(y, design, offset, dispersion)
    unique, group = layout
    group_beta = np.empty((y.shape[0], unique.shape[0]))
    for g in range(unique.shape[0]):
        columns = np.flatnonzero(group == g)
        group_beta[:, g] = fit_one_group(y[:, columns], offset[:, columns],
                                         dispersion[:, columns])
    group_beta = np.maximum(group_beta, -1e8)
    fitted: NDArray[np.float64] = np.exp(group_beta[:, group] + offset)
    coefficients = np.asarray(np.linalg.solve(unique, group_beta.T).T, dtype=np.float64)
    return coefficients, fitted


def _add_prior_count(y: NDArray[np.float64], offset: NDArray[np.float64],
                     prior_count: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Counts plus prior counts proportional to library size, and offsets grown by twice them
    (edgeR's ``addPriorCount``)."""
    library = np.exp(offset)
    prior = prior_count * library / library.mean(axis=1, keepdims=True)
    return y + prior, np.log(library + 2 * prior)


def _levenberg(y: NDArray[np.float64], design: NDArray[np.float64], offset: NDArray[np.float64],
               dispersion: NDArray[np.float64], *, max_iterations: int = 250,
               tolerance: float = 1e-6) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    n_genes, n_coefficients = y.shape[0], design.shape[1]
    beta = _null_start(y, design, offset, dispersion)
    largest = y.max(axis=1)
    zero = largest < LOW_VALUE
    beta[zero] = np.nan
    mu = np.exp(beta @ design.T + offset)
    mu[zero] = 0.0
    deviance = nb_deviance(y, mu, dispersion).sum(axis=1)
    damping = np.zeros(n_genes)
    max_information = np.full(n_genes, -1.0)
    active = np.flatnonzero(~zero)
    identity = np.eye(n_coefficients)
    for iteration in range(1, max_iterations + 1):
        if active.size == 0:
            break
        y_a, mu_a, phi_a, offset_a = y[active], mu[active], dispersion[active], offset[active]
        denominator = 1 + mu_a * phi_a
        information = np.einsum("gn,ni,nj->gij", mu_a / denominator, design, design)
        score = ((y_a - mu_a) / denominator) @ design
        diagonal = np.diagonal(information, axis1=1, axis2=2)
        max_information[active] = np.maximum(max_information[active], diagonal.max(axis=1))
        if iteration == 1:
            damping[active] = np.maximum(max_information[active] * 1e-6, 1e-13)
        step = np.zeros_like(score)
        tries = np.zeros(active.size, dtype=np.intp)
        failed = np.zeros(active.size, dtype=bool)
        low_deviance = np.zeros(active.size, dtype=bool)
        pending = np.ones(active.size, dtype=bool)
        while pending.any():
            rows = np.flatnonzero(pending)
            genes = active[rows]
            tries[rows] += 1
            step[rows] = _damped_step(information[rows], score[rows], damping, genes, identity)
            beta_new = beta[genes] + step[rows]
            mu_new = np.exp(beta_new @ design.T + offset_a[rows])
            deviance_new = nb_deviance(y_a[rows], mu_new, phi_a[rows]).sum(axis=1)
            low = deviance_new / largest[genes] < 1e-13
            low_deviance[rows] |= low
            accept = (deviance_new <= deviance[genes]) | low
            taken = genes[accept]
            beta[taken], mu[taken], deviance[taken] = (beta_new[accept], mu_new[accept],
                                                       deviance_new[accept])
            pending[rows[accept]] = False
            refused = rows[~accept]
            damping[active[refused]] *= 2
            damping[active[refused]] = np.where(damping[active[refused]] <= 0, 1e-100,
                                                damping[active[refused]])
            excessive = damping[active[refused]] / max_information[active[refused]] > 1e13
            failed[refused[excessive]] = True
            pending[refused[excessive]] = False
        divergence = (score * step).sum(axis=1)
        done = failed | low_deviance | (divergence < tolerance)
        relax = ~done & (tries == 1)
        damping[active[relax]] /= 10
        active = active[~done]
    return beta, mu


def _damped_step(information: NDArray[np.float64], score: NDArray[np.float64],
                 damping: NDArray[np.float64], genes: NDArray[np.intp],
                 identity: NDArray[np.float64]) -> NDArray[np.float64]:
    """Solve (information + damping I) step = score; where the Cholesky factorisation fails,
    raise the damping tenfold and retry, as edgeR does."""
    matrices = information + damping[genes, None, None] * identity
    try:
        lower = np.asarray(np.linalg.cholesky(matrices), dtype=np.float64)  # the usual case
    except np.linalg.LinAlgError:
        pass
    else:
        return _cholesky_solve(lower, score)
    step = np.empty_like(score)
    todo = np.arange(genes.size)
    while todo.size:
        matrices = information[todo] + damping[genes[todo], None, None] * identity
        lower, ok = _cholesky(matrices)
        good = todo[ok]
        if good.size:
            step[good] = _cholesky_solve(lower[ok], score[good])
        bad = todo[~ok]
        damping[genes[bad]] *= 10
        damping[genes[bad]] = np.where(damping[genes[bad]] <= 0, 1e-100, damping[genes[bad]])
        todo = bad
    return step


def _cholesky(matrices: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Batched Cholesky factors and whether each matrix is numerically positive definite."""
    size = matrices.shape[-1]
    lower = np.zeros_like(matrices)
    ok = np.ones(matrices.shape[0], dtype=bool)
    for j in range(size):
        pivot = matrices[:, j, j] - np.einsum("gk,gk->g", lower[:, j, :j], lower[:, j, :j])
        ok &= pivot > 0
        root = np.sqrt(np.where(pivot > 0, pivot, 1.0))
        lower[:, j, j] = root
        if j + 1 < size:
            below = matrices[:, j + 1:, j] - np.einsum("gik,gk->gi", lower[:, j + 1:, :j],
                                                       lower[:, j, :j])
            lower[:, j + 1:, j] = below / root[:, None]
    return lower, ok


def _cholesky_solve(lower: NDArray[np.float64], rhs: NDArray[np.float64]) -> NDArray[np.float64]:
    size = rhs.shape[1]
    forward = np.empty_like(rhs)
    for i in range(size):
        forward[:, i] = (rhs[:, i] - np.einsum("gk,gk->g", lower[:, i, :i], forward[:, :i])
                         ) / lower[:, i, i]
    solution = np.empty_like(rhs)
    for i in reversed(range(size)):
        solution[:, i] = (forward[:, i] - np.einsum("gk,gk->g", lower[:, i + 1:, i],
                                                    solution[:, i + 1:])) / lower[:, i, i]
    return solution


def _null_start(y: NDArray[np.float64], design: NDArray[np.float64], offset: NDArray[np.float64],
                dispersion: NDArray[np.float64]) -> NDArray[np.float64]:
    """edgeR's "null" start: the weighted mean count/library ratio, on the log scale, for every
    sample, projected on the design by least squares."""
    library = np.exp(offset)
    weight = library / (1 + dispersion * library)
    with np.errstate(divide="ignore"):
        level = np.log((y * weight / library).sum(axis=1) / weight.sum(axis=1))
    projection = np.linalg.lstsq(design, np.ones(design.shape[0]), rcond=None)[0]
    return level[:, None] * projection[None, :]
