"""Penalised cubic smoothing splines, as R's ``smooth.spline`` (used by qvalue's pi0 and lfdr).

The fit minimises ``sum w_i (y_i - f(x_i))^2 + lambda * integral f''(x)^2 dx`` over cubic
splines with B-spline basis on (a subset of) the unique x, rescaled to [0, 1] (Green & Silverman
1994, *Nonparametric Regression and Generalized Linear Models*, ch. 2-3; Hastie & Tibshirani
1990, *Generalized Additive Models*, sec. 2.10). As R, the smoothing parameter is searched on the
``spar`` scale, ``lambda = r * 256^(3 spar - 1)`` with ``r = tr(X'WX) / tr(Omega)``, by Brent's
golden-section / parabolic minimiser over spar in [-1.5, 1.5] with tolerance 1e-4, matching either
the requested equivalent degrees of freedom (``crit = 3 + (df - tr S)^2``) or minimising GCV.

R's search returns the spline of the *last* spar it evaluated (not always the best one it found);
this implementation does the same search step by step, so its fits agree with R's to rounding.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from manylm.errors import DataError, InputError, ManylmWarning
from manylm.inference.bspline_basis import ORDER, spline_values
from manylm.inference.quantile import type7_quantile
from manylm.inference.spline_search import brent_minimise, interior_knot_count
from manylm.inference.spline_system import PenalisedSystem

__all__ = ["SmoothingSpline", "smooth_spline"]

@dataclass(frozen=True)
class SmoothingSpline:
    """A fitted smoothing spline (R's ``smooth.spline`` object).

    Attributes
    ----------
    x : array of shape (n_unique,)
        The unique x values, sorted.
    fitted : array of shape (n_unique,)
        Fitted values at ``x`` (R's ``$y``).
    y_mean : array of shape (n_unique,)
        Weighted mean response at each unique x (R's ``$yin``).
    weights : array of shape (n_unique,)
        Summed (normalised) weight at each unique x (R's ``$w``).
    leverage : array of shape (n_unique,)
        Diagonal of the smoother matrix (R's ``$lev``).
    df : float
        Equivalent degrees of freedom, ``sum(leverage)``.
    spar, lambda_ : float
        Smoothing parameter on R's spar scale and on the penalty scale. As in R, ``spar`` is the
        best point of the search and ``lambda_`` the one the returned fit was computed with.
    criterion : float
        The search criterion at ``spar`` (GCV, CV, or ``3 + (df target - df)^2``).
    knots : array of shape (n_coefficients + 4,)
        Knot sequence on the [0, 1] scale of x.
    coefficients : array of shape (n_coefficients,)
    x_min, x_range : float
        The map of x onto [0, 1].
    iterations : int
        Steps of the smoothing parameter search (0 when it was given).
    """

    x: NDArray[np.float64]
    fitted: NDArray[np.float64]
    y_mean: NDArray[np.float64]
    weights: NDArray[np.float64]
    leverage: NDArray[np.float64]
    df: float
    spar: float
    lambda_: float
    criterion: float
    knots: NDArray[np.float64]
    coefficients: NDArray[np.float64]
    x_min: float
    x_range: float
    iterations: int

    def predict(self, x: ArrayLike, *, derivative: int = 0) -> NDArray[np.float64]:
        """The spline (or its first or second derivative) at new points (``predict.smooth.spline``).

        Outside the range of the fitted x the spline continues as a straight line with the
        slope it has at the end, as R does.

        Parameters
        ----------
        x : array-like of shape (n_points,)
        derivative : {0, 1, 2}

        Returns
        -------
        array of shape (n_points,)
        """
        if derivative not in (0, 1, 2):
            raise InputError(f"The 'derivative' parameter must be 0, 1 or 2. Got {derivative!r}.")
        points = np.asarray(x, dtype=np.float64)
        return _predict(self, points.ravel(), derivative).reshape(points.shape)


def smooth_spline(
    x: ArrayLike,
    y: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    df: float | None = None,
    spar: float | None = None,
    lambda_: float | None = None,
    cv: bool = False,
    all_knots: bool = False,
    df_offset: float = 0.0,
    penalty: float = 1.0,
) -> SmoothingSpline:
    """Fit a cubic smoothing spline (R's ``stats::smooth.spline``).

    With ``df`` the smoothing parameter is chosen so that the trace of the smoother matrix is
    ``df``; with ``spar`` or ``lambda_`` it is fixed; otherwise it minimises generalised
    cross-validation (ordinary leave-one-out CV with ``cv=True``). Knots: every unique x when
    there are fewer than 50 of them or ``all_knots``, else R's ``.nknots.smspl`` count spread over
    them.

    Parameters
    ----------
    x, y : array-like of shape (n,)
        Finite values; at least four unique x. Tied x (closer than ``1e-6 * IQR(x)``) are merged
        into their weighted mean, as R does.
    weights : array-like of shape (n,), optional
        Non-negative prior weights.
    df : float, optional
        Target equivalent degrees of freedom, in (1, number of unique x].
    spar, lambda_ : float, optional
        A fixed smoothing parameter, on R's spar scale or the penalty scale.
    cv : bool
        Ordinary instead of generalised cross-validation (when neither df nor spar is given).
    all_knots : bool
        A knot at every unique x.
    df_offset, penalty : float
        GCV's ``df.offset`` and ``penalty`` (R's defaults 0 and 1).

    Returns
    -------
    SmoothingSpline

    Raises
    ------
    DataError
        Fewer than four unique x, or a penalised system that is not positive definite at a
        small smoothing parameter (R stops there too).

    Warns
    -----
    ManylmWarning
        The search ran into a smoothing parameter so large that the system could not be
        factorised: the fit is the weighted mean, with df = 1 (R says the same but predicts
        from coefficients it never solved for; here the prediction is that constant too).
    """
    x_values = _finite_vector(x, "x")
    y_values = _finite_vector(y, "y")
    if x_values.shape != y_values.shape:
        raise InputError(f"'x' and 'y' must have the same length; got {x_values.size} and "
                         f"{y_values.size}.")
    w = None if weights is None else _finite_vector(weights, "weights")
    if w is not None:
        if w.shape != x_values.shape:
            raise InputError(f"'weights' must have the length of 'x' ({x_values.size}); got "
                             f"{w.size}.")
        if np.any(w < 0) or not np.any(w > 0):
            raise InputError("'weights' must be non-negative with at least one positive.")
    given = [name for name, value in (("df", df), ("spar", spar), ("lambda_", lambda_))
             if value is not None]
    if len(given) > 1:
        raise InputError(f"Give at most one of 'df', 'spar' and 'lambda_'; got {given}.")
    if lambda_ is not None and not lambda_ >= 0:
        raise InputError(f"The 'lambda_' parameter must be >= 0. Got {lambda_!r}.")
    if spar is not None and not math.isfinite(spar):
        raise InputError(f"The 'spar' parameter must be finite. Got {spar!r}.")
    return _fit(x_values, y_values, w, df=df, spar=spar, lambda_=lambda_, cv=cv,
                all_knots=all_knots, df_offset=df_offset, penalty=penalty)


def _finite_vector(values: ArrayLike, name: str) -> NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(array)):
        raise DataError(f"'{name}' has {int(np.sum(~np.isfinite(array)))} missing or infinite "
                        "values; a smoothing spline needs finite values only.")
    return array


# --------------------------------------------------------------------------- the kernel
class _Solution(NamedTuple):
    lambda_: float
    coefficients: NDArray[np.float64]
    fitted: NDArray[np.float64]
    leverage: NDArray[np.float64]
    criterion: float


def _fit(x: NDArray[np.float64], y: NDArray[np.float64], w: NDArray[np.float64] | None, *,
         df: float | None, spar: float | None, lambda_: float | None, cv: bool,
         all_knots: bool, df_offset: float, penalty: float) -> SmoothingSpline:
    weights = np.ones(x.shape[0]) if w is None else w * np.count_nonzero(w > 0) / np.sum(w)
    unique_x, weight_sum, y_mean, residual_ss = _merge_ties(x, y, weights)
    n_unique = unique_x.shape[0]
    if n_unique <= 3:
        raise DataError(f"A smoothing spline needs at least four unique x values; got {n_unique}.")
    x_min, x_range = float(unique_x[0]), float(unique_x[-1] - unique_x[0])
    scaled = (unique_x - unique_x[0]) / x_range
    n_knots = n_unique if all_knots else interior_knot_count(n_unique)
    knots = np.concatenate([np.repeat(scaled[0], 3), scaled[_knot_positions(n_unique, n_knots)],
                            np.repeat(scaled[-1], 3)])
    kind, target = ("cv" if cv else "gcv"), df_offset
    if df is not None:
        if not 1 < df <= n_unique:
            raise InputError(f"'df' must be in (1, {n_unique}] (the number of unique x); "
                             f"got {df}.")
        kind, target = "df", float(df)

    system = PenalisedSystem(knots, scaled, y_mean, weight_sum)
    solutions: list[_Solution] = []
    failed = False

    def evaluate(lambda_value: float) -> float:
        nonlocal failed
        solved = system.solve(lambda_value)
        if solved is None:  # R keeps the criterion of the previous evaluation and stops
            failed = True
            return solutions[-1].criterion if solutions else math.inf
        coefficients, fitted, leverage = solved
        value = _criterion(kind, y_mean, fitted, leverage, weight_sum, residual_ss, target,
                           penalty)
        solutions.append(_Solution(lambda_value, coefficients, fitted, leverage, value))
        return value

    if lambda_ is not None or spar is not None:
        best_spar = math.nan if spar is None else float(spar)
        best_criterion = evaluate(float(lambda_) if lambda_ is not None
                                  else system.spar_to_lambda(best_spar))
        iterations = 0
    else:
        best_spar, best_criterion, iterations = brent_minimise(
            lambda s: evaluate(system.spar_to_lambda(s)), stop=lambda: failed)

    if failed or not solutions:
        if lambda_ is not None or spar is not None or best_spar < 0.5:
            raise DataError("The smoothing spline's penalised system is not positive definite "
                            "(smoothing parameter too small); give a larger 'spar' or 'df'.")
        warnings.warn("Smoothing parameter too large for the smoothing spline; using a constant "
                      "fit (df = 1).", ManylmWarning, stacklevel=3)
        constant = float(np.sum(weight_sum * y_mean) / np.sum(weight_sum))
        n_coefficients = knots.shape[0] - ORDER
        return SmoothingSpline(unique_x, np.full(n_unique, constant), y_mean, weight_sum,
                               np.full(n_unique, np.nan), 1.0, best_spar, math.nan,
                               best_criterion, knots, np.full(n_coefficients, constant), x_min,
                               x_range, iterations)
    last = solutions[-1]  # as R: the fit of the last evaluation, not of the best spar
    return SmoothingSpline(
        x=unique_x, fitted=last.fitted, y_mean=y_mean, weights=weight_sum,
        leverage=last.leverage, df=float(np.sum(last.leverage)), spar=best_spar,
        lambda_=last.lambda_, criterion=best_criterion, knots=knots,
        coefficients=last.coefficients, x_min=x_min, x_range=x_range, iterations=iterations,
    )


def _merge_ties(x: NDArray[np.float64], y: NDArray[np.float64], weights: NDArray[np.float64]
                ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float]:
    """Unique x (within 1e-6 IQR), summed weights, weighted mean y and the within-tie SS."""
    ordered = np.sort(x)
    tolerance = 1e-6 * (type7_quantile(ordered, 0.75) - type7_quantile(ordered, 0.25))
    if not tolerance > 0:
        raise DataError("The x values of a smoothing spline have an interquartile range of 0; "
                        "give at least four distinct, spread-out x values.")
    rounded = np.round((x - np.mean(x)) / tolerance)
    order = np.argsort(x, kind="stable")
    keys, first, group = np.unique(rounded[order], return_index=True, return_inverse=True)
    unique_x = x[order][first]
    weight_sum = np.bincount(group, weights=weights[order], minlength=keys.size).astype(np.float64)
    weighted_y = np.bincount(group, weights=(weights * y)[order], minlength=keys.size)
    weighted_y2 = np.bincount(group, weights=(weights * y * y)[order], minlength=keys.size)
    y_mean = weighted_y / np.where(weight_sum > 0, weight_sum, 1.0)
    residual_ss = float(np.sum(weighted_y2 - weight_sum * y_mean**2))
    return unique_x, weight_sum, y_mean, residual_ss


def _knot_positions(n_unique: int, n_knots: int) -> NDArray[np.intp]:
    """R's ``seq.int(1, n, length.out = k)`` used as an index (so truncated), 0-based."""
    if n_knots == n_unique:
        return np.arange(n_unique)
    step = (n_unique - 1.0) / (n_knots - 1.0)
    positions = 1.0 + np.arange(n_knots) * step
    positions[-1] = n_unique
    return positions.astype(np.intp) - 1


def _criterion(kind: str, y_mean: NDArray[np.float64], fitted: NDArray[np.float64],
               leverage: NDArray[np.float64], weight_sum: NDArray[np.float64],
               residual_ss: float, target: float, penalty: float) -> float:
    """sslvrg's criteria: 3 + (df - tr S)^2, GCV, or leave-one-out CV."""
    if kind == "df":
        return 3.0 + (target - float(np.sum(leverage))) ** 2
    weighted_residual2 = (y_mean - fitted) ** 2 * weight_sum
    if kind == "cv":
        return float(np.sum(weighted_residual2 / (1 - leverage) ** 2)) / y_mean.shape[0]
    total_weight = float(np.sum(weight_sum))
    rss = residual_ss + float(np.sum(weighted_residual2))
    return (rss / total_weight) / (1 - (target + penalty * float(np.sum(leverage)))
                                   / total_weight) ** 2


def _predict(spline: SmoothingSpline, x: NDArray[np.float64], derivative: int
             ) -> NDArray[np.float64]:
    scaled = (x - spline.x_min) / spline.x_range
    inside = (scaled >= 0) & (scaled <= 1)
    out = np.empty_like(scaled)
    if inside.any():
        out[inside] = spline_values(spline.knots, spline.coefficients, scaled[inside], derivative)
    outside = ~inside
    if outside.any():
        ends = np.array([0.0, 1.0])
        if derivative == 0:
            level = spline_values(spline.knots, spline.coefficients, ends)
            slope = spline_values(spline.knots, spline.coefficients, ends, 1)
            left = scaled < 0
            out[outside] = np.where(left[outside], level[0] + slope[0] * scaled[outside],
                                    level[1] + slope[1] * (scaled[outside] - 1.0))
        elif derivative == 1:
            slope = spline_values(spline.knots, spline.coefficients, ends, 1)
            out[outside] = np.where(scaled[outside] < 0, slope[0], slope[1])
        else:
            out[outside] = 0.0
    return out / spline.x_range**derivative if derivative else out

