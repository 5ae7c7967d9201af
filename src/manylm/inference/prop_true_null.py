"""limma's estimators of the proportion of true null hypotheses (``propTrueNull``, ``convest``)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from manylm.errors import InputError
from manylm.inference.p_values import check_p_values

__all__ = ["PROP_TRUE_NULL_METHODS", "prop_true_null"]

PROP_TRUE_NULL_METHODS: tuple[str, ...] = ("lfdr", "mean", "hist", "convest")


def prop_true_null(
    p_values: ArrayLike,
    *,
    method: str = "lfdr",
    n_bins: int = 20,
    max_iterations: int = 100,
    tol: float = 1e-6,
) -> float:
    """Estimate the proportion of true null hypotheses (limma 3.54's ``propTrueNull``).

    Methods (Phipson 2013, PhD thesis, University of Melbourne, ch. 6, for ``"lfdr"``,
    ``"mean"`` and ``"hist"``):

    - ``"lfdr"``: the average of BH-type local FDRs ``min(m p_(i) / i, 1)``, weighted by rank.
    - ``"mean"``: twice the mean of ``min(p_(i), (i - 0.5) / m)``.
    - ``"hist"``: the height of the flat right tail of a histogram of ``n_bins`` bins relative
      to the mean height (Nettleton et al. 2006, JABES 11).
    - ``"convest"``: the convex decreasing density estimate of Langaas, Lindqvist & Ferkingstad
      (2005), JRSS B 67, evaluated at 1 (``max_iterations`` steps; bisection to ``tol``).

    NaN p-values are ignored (limma does not accept them).

    Parameters
    ----------
    p_values : array-like
        In [0, 1]; NaN allowed.
    method : {"lfdr", "mean", "hist", "convest"}
    n_bins : int
        Histogram bins for ``"hist"``.
    max_iterations : int
    tol : float
        ``convest``'s ``niter`` and ``tol``.

    Returns
    -------
    float
    """
    checked = check_p_values(p_values)
    if method not in PROP_TRUE_NULL_METHODS:
        raise InputError(f"The 'method' parameter must be one of "
                         f"{', '.join(PROP_TRUE_NULL_METHODS)}. Got {method!r}.")
    if not (isinstance(n_bins, int | np.integer) and n_bins >= 1):
        raise InputError(f"The 'n_bins' parameter must be a positive integer. Got {n_bins!r}.")
    if not (isinstance(max_iterations, int | np.integer) and max_iterations >= 1):
        raise InputError(f"The 'max_iterations' parameter must be a positive integer. "
                         f"Got {max_iterations!r}.")
    if not tol > 0:
        raise InputError(f"The 'tol' parameter must be positive. Got {tol!r}.")
    observed = checked.values[checked.observed]
    if method == "hist":
        return _from_histogram(observed, int(n_bins))
    p = np.sort(observed)
    if method == "lfdr":
        return _by_local_fdr(p)
    if method == "mean":
        return _by_mean(p)
    return _convex_decreasing(p, int(max_iterations), float(tol))


def _by_local_fdr(p: NDArray[np.float64]) -> float:
    n = p.shape[0]
    rank = np.arange(n, 0, -1, dtype=np.float64)
    descending = p[::-1]
    capped = np.minimum(n / rank * descending, 1.0)
    return float(np.sum(rank * capped)) / n / (n + 1) * 2


def _by_mean(p: NDArray[np.float64]) -> float:
    n = p.shape[0]
    return 2 * float(np.mean(np.minimum(p, (np.arange(1, n + 1) - 0.5) / n)))


def _from_histogram(p: NDArray[np.float64], n_bins: int) -> float:
    # Bins (b[k-1], b[k]] as R's cut(), b = (-0.1, 1/n, 2/n, ..., 1). ceil(p n) is the bin but
    # for rounding next to a break, which the two comparisons with the breaks themselves fix.
    breaks = np.concatenate([[-0.1], np.arange(1, n_bins + 1) / n_bins])
    index = np.clip(np.ceil(p * n_bins).astype(np.intp), 1, n_bins)
    index -= p <= breaks[index - 1]
    index += (index < n_bins) & (p > breaks[index])
    counts = np.bincount(index - 1, minlength=n_bins)
    tail_means = np.cumsum(counts[::-1])[::-1] / np.arange(n_bins, 0, -1)
    first_flat = int(np.flatnonzero(tail_means >= counts)[0])
    return float(tail_means[first_flat] / tail_means[0])


def _convex_decreasing(p: NDArray[np.float64], max_iterations: int, tol: float) -> float:
    """Langaas et al.'s iterative convex decreasing density estimate at 1, as limma's ``convest``.

    The density is kept on the grid 0, 0.01, ..., 1 and mixed, step by step, with the
    triangular density ``2 (theta - x)_+ / theta^2`` (or the uniform) that most increases the
    likelihood; the mixing weight is found by bisection.
    """
    m = p.shape[0]
    upper_cell = np.ceil(100 * p) / 100
    lower_cell = np.floor(100 * p) / 100
    # R indexes with these doubles, truncating them: kept so the interpolation matches limma's.
    lower_index = np.trunc(100 * lower_cell + 1).astype(np.intp) - 1
    upper_index = np.trunc(100 * upper_cell + 1).astype(np.intp) - 1
    x_grid = np.arange(101) / 100
    search_grid = np.arange(1, 101) / 100

    def best_theta(density_at_p: NDArray[np.float64]) -> float:
        # sum over p < theta of 2 (theta - p) / (theta^2 f(p)), for every theta, from prefix sums
        below = np.searchsorted(p, search_grid, side="left")
        inverse = np.concatenate([[0.0], np.cumsum(1 / density_at_p)])
        weighted = np.concatenate([[0.0], np.cumsum(p / density_at_p)])
        score = 2 * (search_grid * inverse[below] - weighted[below]) / search_grid**2
        return 0.01 * (int(np.argmax(score)) + 1)

    def triangle(theta: float, at: NDArray[np.float64]) -> NDArray[np.float64]:
        return 2 * (theta - at) * (at < theta) / theta**2

    density_grid = np.ones(101)
    density_at_p = np.ones(m)
    theta = best_theta(density_at_p)
    theta_grid, theta_at_p = triangle(theta, x_grid), triangle(theta, p)
    pi0 = float("nan")
    weight = 0.0  # as limma, a bisection that never runs keeps the previous weight
    for _ in range(max_iterations):
        difference = density_at_p - theta_at_p
        if np.sum(difference / density_at_p) > 0:
            weight = 0.0
        else:
            low, high = 0.0, 1.0
            positive = density_at_p > 0
            difference_pos = difference[positive]
            density_pos, theta_pos = density_at_p[positive], theta_at_p[positive]
            mixed, scratch = np.empty_like(density_pos), np.empty_like(density_pos)
            while abs(high - low) > tol:
                weight = (low + high) / 2
                # (1 - w) f + w g, in place: this loop is most of convest's time
                np.multiply(density_pos, 1 - weight, out=mixed)
                np.multiply(theta_pos, weight, out=scratch)
                mixed += scratch
                np.divide(difference_pos, mixed, out=mixed)
                if np.sum(mixed) < 0:
                    low = weight
                else:
                    high = weight
        density_grid = (1 - weight) * density_grid + weight * theta_grid
        pi0 = float(density_grid[100])
        at_upper = density_grid[upper_index]
        density_at_p = 100 * (density_grid[lower_index] - at_upper) * (upper_cell - p) + at_upper
        theta = best_theta(density_at_p)
        theta_grid, theta_at_p = triangle(theta, x_grid), triangle(theta, p)
        if np.sum(theta_at_p / density_at_p) < np.sum(1 / density_at_p):
            theta_grid, theta_at_p = np.ones(101), np.ones(m)
    return pi0
