"""The proportion of true null hypotheses, pi0, as Storey's ``qvalue::pi0est``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from manylm.errors import DataError, InputError
from manylm.inference.p_values import check_p_values
from manylm.inference.quantile import type7_quantile
from manylm.inference.smoothing_spline import smooth_spline

__all__ = ["PI0_METHODS", "Pi0Estimate", "default_lambdas", "pi0_estimate"]

PI0_METHODS: tuple[str, ...] = ("smoother", "bootstrap")


def default_lambdas() -> NDArray[np.float64]:
    """qvalue's grid ``seq(0.05, 0.95, 0.05)``, with R's arithmetic (``from + i * by``, capped)."""
    return np.minimum(0.05 + np.arange(19) * 0.05, 0.95)


@dataclass(frozen=True)
class Pi0Estimate:
    """An estimate of pi0 and the curve it came from.

    Attributes
    ----------
    pi0 : float
        In (0, 1].
    method : str
        ``"smoother"``, ``"bootstrap"``, or ``"lambda"`` (a single lambda was given).
    lambdas : array of shape (n_lambdas,)
        The tuning grid, sorted.
    pi0_by_lambda : array of shape (n_lambdas,)
        ``#{p >= lambda} / (m (1 - lambda))`` (qvalue's ``pi0.lambda``).
    pi0_smoothed : array of shape (n_lambdas,) or None
        The smoothing spline through ``pi0_by_lambda`` at each lambda (smoother only).
    """

    pi0: float
    method: str
    lambdas: NDArray[np.float64]
    pi0_by_lambda: NDArray[np.float64]
    pi0_smoothed: NDArray[np.float64] | None


def pi0_estimate(
    p_values: ArrayLike,
    *,
    method: str = "smoother",
    lambdas: ArrayLike | None = None,
    smooth_df: float = 3,
    smooth_log_pi0: bool = False,
) -> Pi0Estimate:
    """Estimate the proportion of true nulls from p-values (qvalue 2.30's ``pi0est``).

    Storey (2002), *A direct approach to false discovery rates*, JRSS B 64; Storey & Tibshirani
    (2003), *Statistical significance for genomewide studies*, PNAS 100. For each lambda,
    ``pi0(lambda) = #{p >= lambda} / (m (1 - lambda))``; then either a cubic smoothing spline with
    ``smooth_df`` degrees of freedom through ``pi0(lambda)`` (optionally on the log scale),
    evaluated at the largest lambda (``"smoother"``), or the lambda minimising the bootstrap
    mean-squared-error estimate of Storey, Taylor & Siegmund (2004, JRSS B 66), computed in
    closed form as qvalue does (no resampling, so the result is deterministic)
    (``"bootstrap"``). Capped at 1. NaN p-values are ignored.

    Parameters
    ----------
    p_values : array-like of shape (m,)
        In [0, 1]; NaN allowed.
    method : {"smoother", "bootstrap"}
    lambdas : array-like, optional
        A single value in [0, 1), or at least four; default 0.05, 0.10, ..., 0.95.
    smooth_df : float
        Degrees of freedom of the smoothing spline, in (1, number of lambdas].
    smooth_log_pi0 : bool
        Smooth ``log pi0(lambda)`` instead of ``pi0(lambda)``.

    Returns
    -------
    Pi0Estimate
    """
    checked = check_p_values(p_values)
    grid = check_lambdas(lambdas)
    if method not in PI0_METHODS:
        raise InputError(f"The 'method' parameter must be one of {', '.join(PI0_METHODS)}. "
                         f"Got {method!r}.")
    if grid.size > 1 and not 1 < smooth_df <= grid.size:
        raise InputError(f"The 'smooth_df' parameter must be in (1, {grid.size}] (the number of "
                         f"lambdas). Got {smooth_df!r}.")
    observed = np.sort(checked.values[checked.observed])
    return pi0_kernel(observed, grid, method=method, smooth_df=float(smooth_df),
                      smooth_log_pi0=smooth_log_pi0)


def check_lambdas(lambdas: ArrayLike | None) -> NDArray[np.float64]:
    """The sorted lambda grid, checked as ``pi0est`` checks it."""
    if lambdas is None:
        return default_lambdas()
    grid = np.sort(np.asarray(lambdas, dtype=np.float64).ravel())
    if grid.size == 0 or 1 < grid.size < 4:
        raise InputError(f"'lambdas' must be one value or at least four; got {grid.size}.")
    if not (np.all(np.isfinite(grid)) and grid[0] >= 0 and grid[-1] < 1):
        raise InputError(f"'lambdas' must lie in [0, 1); got values from {grid[0]} to "
                         f"{grid[-1]}.")
    return grid


def pi0_kernel(sorted_p: NDArray[np.float64], lambdas: NDArray[np.float64], *, method: str,
               smooth_df: float, smooth_log_pi0: bool) -> Pi0Estimate:
    """:func:`pi0_estimate` on sorted, non-missing p-values and a checked lambda grid."""
    m = sorted_p.shape[0]
    at_or_above = m - np.searchsorted(sorted_p, lambdas, side="left")
    if lambdas.size == 1:
        raw = at_or_above[0] / m / (1.0 - lambdas[0])
        return _checked(Pi0Estimate(min(raw, 1.0), "lambda", lambdas, np.array([raw]), None))
    if at_or_above[-1] == 0:
        raise DataError(
            f"No p-value is at or above the largest lambda ({lambdas[-1]:g}), so pi0 cannot be "
            "estimated there (qvalue stops here too). Give smaller 'lambdas' or a fixed 'pi0'."
        )
    pi0_by_lambda = at_or_above / (m * (1.0 - lambdas))
    if method == "smoother":
        if smooth_log_pi0:
            spline = smooth_spline(lambdas, np.log(pi0_by_lambda), df=smooth_df)
            smoothed = np.exp(spline.predict(lambdas))
        else:
            spline = smooth_spline(lambdas, pi0_by_lambda, df=smooth_df)
            smoothed = spline.predict(lambdas)
        return _checked(Pi0Estimate(min(float(smoothed[-1]), 1.0), method, lambdas,
                                    pi0_by_lambda, smoothed))
    floor = type7_quantile(np.sort(pi0_by_lambda), 0.1)
    mse = (at_or_above / (m**2 * (1.0 - lambdas) ** 2)) * (1.0 - at_or_above / m) \
        + (pi0_by_lambda - floor) ** 2
    best = float(np.min(pi0_by_lambda[mse == np.min(mse)]))
    return _checked(Pi0Estimate(min(best, 1.0), method, lambdas, pi0_by_lambda, None))


def _checked(estimate: Pi0Estimate) -> Pi0Estimate:
    if not estimate.pi0 > 0:
        raise DataError(
            f"The estimated pi0 is {estimate.pi0:.4g} (<= 0). Check that these are raw p-values, "
            "or use another lambda range, the 'bootstrap' method or a fixed 'pi0'."
        )
    return estimate
