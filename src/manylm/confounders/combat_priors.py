"""ComBat's empirical Bayes step: batch effect estimates, their priors and parametric posteriors.

Johnson, Li & Rabinovic (2007), Biostatistics 8:118-127, sections 3.1 (steps 2-3) and 3.2. On
the standardised data each feature g has, in batch i, an additive effect gamma_ig (normal prior
N(gamma_bar_i, tau2_i)) and a multiplicative effect delta2_ig (inverse-gamma prior with shape
a_i, scale b_i). The hyper-parameters are method-of-moments estimates over features, and the
posterior means are found by iterating the two conditional posteriors to convergence, as sva's
``ComBat`` (3.46; its ``aprior``, ``bprior``, ``postmean``, ``postvar`` and ``it.sol``) does.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from manylm.errors import ManylmWarning

__all__ = ["BatchMoments", "Priors", "batch_moments", "hyperpriors", "location_estimates",
           "parametric_posteriors", "scale_estimates", "stack_moments"]

#: sva's ``it.sol`` tolerance on the largest relative change of any posterior.
CONVERGENCE = 1e-4
MAX_ITERATIONS = 10_000


@dataclass(frozen=True)
class BatchMoments:
    """Observed count, mean and centred sum of squares of each feature in each batch.

    Arrays of shape (n_features, n_batches), on the standardised scale.
    """

    n_observed: NDArray[np.float64]
    mean: NDArray[np.float64]
    sum_squares: NDArray[np.float64]


@dataclass(frozen=True)
class Priors:
    """Per-batch hyper-parameters, arrays of shape (n_batches,).

    ``gamma_bar`` and ``tau2`` are the mean and variance over features of the additive effects;
    ``a`` and ``b`` the inverse-gamma shape and scale matched to the multiplicative effects.
    """

    gamma_bar: NDArray[np.float64]
    tau2: NDArray[np.float64]
    a: NDArray[np.float64]
    b: NDArray[np.float64]


def batch_moments(data: NDArray[np.float64], codes: NDArray[np.intp],
                  n_batches: int) -> BatchMoments:
    """Per-batch moments of each row of ``data`` (n_rows x n_samples, NaN = missing); ``codes``
    gives each sample's batch. Sums over a batch are products with its indicator column."""
    indicators = np.zeros((codes.size, n_batches))
    indicators[np.arange(codes.size), codes] = 1.0
    missing = np.isnan(data)
    has_missing = bool(missing.any())
    observed = ~missing
    filled = np.where(observed, data, 0.0) if has_missing else data
    n_observed = (observed @ indicators if has_missing
                  else np.broadcast_to(indicators.sum(axis=0), (data.shape[0], n_batches)).copy())
    with np.errstate(divide="ignore", invalid="ignore"):  # rows without values: set aside later
        mean = (filled @ indicators) / n_observed
    centred = filled - mean[:, codes]
    if has_missing:
        centred[missing] = 0.0
    centred *= centred
    return BatchMoments(n_observed=n_observed, mean=mean, sum_squares=centred @ indicators)


def stack_moments(parts: list[BatchMoments]) -> BatchMoments:
    """The moments of consecutive blocks of rows, as one."""
    return BatchMoments(n_observed=np.vstack([p.n_observed for p in parts]),
                        mean=np.vstack([p.mean for p in parts]),
                        sum_squares=np.vstack([p.sum_squares for p in parts]))


def location_estimates(moments: BatchMoments, reference: int | None) -> NDArray[np.float64]:
    """Least-squares batch effects gamma_hat (n_features x n_batches).

    Without a reference batch these are the batch means; with one, sva's batch design has an
    all-ones reference column, so the reference gets its own mean and the others their
    difference from it.
    """
    gamma = moments.mean.copy()
    if reference is not None:
        others = np.arange(gamma.shape[1]) != reference
        gamma[:, others] -= gamma[:, [reference]]
    return gamma


def scale_estimates(moments: BatchMoments, *, mean_only: bool) -> NDArray[np.float64]:
    """Sample variances delta_hat within each batch (ones for mean-only ComBat)."""
    if mean_only:
        return np.ones_like(moments.mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        return moments.sum_squares / (moments.n_observed - 1)


def hyperpriors(gamma_hat: NDArray[np.float64], delta_hat: NDArray[np.float64]) -> Priors:
    """Method-of-moments hyper-parameters of each batch (sva's ``aprior`` / ``bprior``)."""
    gamma_bar = gamma_hat.mean(axis=0)
    tau2 = gamma_hat.var(axis=0, ddof=1)
    scale_mean = delta_hat.mean(axis=0)
    scale_var = delta_hat.var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):  # mean-only: delta_hat is all ones
        a = (2 * scale_var + scale_mean**2) / scale_var
        b = (scale_mean * scale_var + scale_mean**3) / scale_var
    return Priors(gamma_bar=gamma_bar, tau2=tau2, a=a, b=b)


def parametric_posteriors(
    moments: BatchMoments,
    gamma_hat: NDArray[np.float64],
    delta_hat: NDArray[np.float64],
    priors: Priors,
    *,
    mean_only: bool,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Posterior batch effects gamma_star, delta_star (n_features x n_batches).

    For each batch the conditional posterior means are iterated, all features together, until
    the largest relative change of any of them is at most 1e-4 (sva's ``it.sol``; the relative
    change is signed by the old value, as there). Mean-only ComBat shrinks gamma_hat once with
    n = 1 and delta = 1, as sva's ``postmean(gamma.hat, gamma.bar, 1, 1, t2)``.
    """
    # batch-major copies: each batch's features are then contiguous in memory
    n_observed, mean, sum_squares, gamma, delta = (
        np.ascontiguousarray(a.T) for a in (moments.n_observed, moments.mean,
                                            moments.sum_squares, gamma_hat, delta_hat))
    gamma_star = np.empty_like(gamma)
    delta_star = np.ones_like(delta)
    for k in range(gamma.shape[0]):
        tau2, gamma_bar = priors.tau2[k], priors.gamma_bar[k]
        if mean_only:
            gamma_star[k] = (tau2 * gamma[k] + gamma_bar) / (tau2 + 1)
            continue
        gamma_star[k], delta_star[k] = _iterate(
            n_observed[k], mean[k], sum_squares[k], gamma[k], delta[k], gamma_bar, tau2,
            priors.a[k], priors.b[k])
    return gamma_star.T, delta_star.T


def _iterate(n: NDArray[np.float64], mean: NDArray[np.float64], sum_squares: NDArray[np.float64],
             gamma_hat: NDArray[np.float64], delta_hat: NDArray[np.float64], gamma_bar: float,
             tau2: float, a: float, b: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    gamma_old, delta_old = gamma_hat, delta_hat
    for _ in range(MAX_ITERATIONS):
        gamma_new = (tau2 * n * gamma_hat + delta_old * gamma_bar) / (tau2 * n + delta_old)
        # sum over the batch of (x - gamma_new)^2, from the batch mean and centred sum of squares
        residual_ss = sum_squares + n * (mean - gamma_new) ** 2
        delta_new = (0.5 * residual_ss + b) / (n / 2 + a - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            change = max(np.max(np.abs(gamma_new - gamma_old) / gamma_old),
                         np.max(np.abs(delta_new - delta_old) / delta_old))
        gamma_old, delta_old = gamma_new, delta_new
        if not change > CONVERGENCE:
            return gamma_new, delta_new
    warnings.warn(f"ComBat's posterior iteration did not converge in {MAX_ITERATIONS} rounds; "
                  "the last values are used.", ManylmWarning, stacklevel=3)
    return gamma_old, delta_old
