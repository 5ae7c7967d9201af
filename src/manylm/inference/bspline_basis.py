"""Cubic B-splines on a clamped knot sequence: basis values, derivatives and the roughness penalty.

The building blocks of the penalised regression spline in :mod:`manylm.inference.smoothing_spline`
(R's ``smooth.spline``). Everything is evaluated interval by interval: a point in the knot
interval ``[t[i], t[i+1])`` meets exactly four non-zero cubic B-splines, ``B[i-3] .. B[i]``, so a
basis evaluation is an array of shape (n_points, 4) plus the interval index of each point (de Boor
1978, *A Practical Guide to Splines*, ch. IX-X, the recurrences behind ``bsplvb``/``bsplvd``).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["basis_values", "knot_interval", "penalty_bands", "spline_values"]

ORDER = 4  # cubic
# R's sgram.f integrates the product of two linear pieces of B'' with 0.3330 where the exact
# weight is 1/3; the penalty (and so every fitted value) only matches R's with the same constant.
_SGRAM_THIRD = 0.3330


def knot_interval(knots: NDArray[np.float64], x: NDArray[np.float64]) -> NDArray[np.intp]:
    """Index ``i`` of the knot interval ``[knots[i], knots[i+1])`` holding each ``x``.

    Points at or beyond the right end use the last non-empty interval and points left of the
    first knot the first one, as de Boor's ``interv`` does for a clamped sequence.

    Parameters
    ----------
    knots : array of shape (n_coefficients + 4,)
        Clamped knot sequence (the first and last knots repeated four times).
    x : array of shape (n_points,)

    Returns
    -------
    array of int of shape (n_points,), values in ``[3, n_coefficients - 1]``.
    """
    n_coefficients = knots.shape[0] - ORDER
    interval = np.searchsorted(knots, x, side="right") - 1
    return np.clip(interval, ORDER - 1, n_coefficients - 1)


def basis_values(knots: NDArray[np.float64], interval: NDArray[np.intp],
                 x: NDArray[np.float64], derivative: int = 0) -> NDArray[np.float64]:
    """The four non-zero cubic B-splines (or a derivative of them) at each point.

    Column ``r`` holds ``B[interval - 3 + r]`` evaluated with the polynomial piece of
    ``interval`` (so a point exactly on a knot can be evaluated from the left interval too).

    Parameters
    ----------
    knots : array of shape (n_coefficients + 4,)
    interval : array of int of shape (n_points,)
        From :func:`knot_interval` (or chosen by the caller).
    x : array of shape (n_points,)
    derivative : {0, 1, 2, 3}

    Returns
    -------
    array of shape (n_points, 4)
    """
    # Values of the order (4 - derivative) B-splines by the Cox-de Boor recurrence, then
    # `derivative` steps of the derivative recurrence up to order 4.
    values = np.ones((x.shape[0], 1))
    for order in range(1, ORDER - derivative):
        values = _raise_order(knots, interval, x, values, order, differentiate=False)
    for order in range(ORDER - derivative, ORDER):
        values = _raise_order(knots, interval, x, values, order, differentiate=True)
    return values


def _raise_order(knots: NDArray[np.float64], interval: NDArray[np.intp],
                 x: NDArray[np.float64], values: NDArray[np.float64], order: int,
                 *, differentiate: bool) -> NDArray[np.float64]:
    """Order ``order`` -> ``order + 1``: ``values[:, s]`` is ``B[interval - order + 1 + s]``."""
    n = x.shape[0]
    raised = np.zeros((n, order + 1))
    for r in range(order + 1):
        j = interval - order + r  # index of the new B-spline
        if r >= 1:  # B[j] of the lower order is non-zero here
            span = knots[j + order] - knots[j]
            term = values[:, r - 1] / span
            raised[:, r] += order * term if differentiate else (x - knots[j]) * term
        if r <= order - 1:  # B[j + 1] of the lower order is non-zero here
            span = knots[j + order + 1] - knots[j + 1]
            term = values[:, r] / span
            raised[:, r] -= order * term if differentiate else (x - knots[j + order + 1]) * term
    return raised


def spline_values(knots: NDArray[np.float64], coefficients: NDArray[np.float64],
                  x: NDArray[np.float64], derivative: int = 0) -> NDArray[np.float64]:
    """The spline ``sum_j coefficients[j] B[j](x)`` (or its derivative) at each point.

    The spline is first written as one cubic per knot interval (its Taylor coefficients at the
    interval's left knot), so each of many points costs a table look-up and a Horner step.
    Points outside the knot range use the polynomial of the nearest interval; callers that
    extrapolate differently handle those points themselves.

    Parameters
    ----------
    knots : array of shape (n_coefficients + 4,)
    coefficients : array of shape (n_coefficients,)
    x : array of shape (n_points,)
    derivative : {0, 1, 2, 3}

    Returns
    -------
    array of shape (n_points,)
    """
    n_coefficients = knots.shape[0] - ORDER
    intervals = np.arange(ORDER - 1, n_coefficients)
    block = coefficients[(intervals - (ORDER - 1))[:, None] + np.arange(ORDER)]
    # taylor[:, d] = d-th derivative at the left knot / d!
    taylor = np.column_stack([
        np.einsum("nr,nr->n", basis_values(knots, intervals, knots[intervals], d), block)
        / math.factorial(d) for d in range(ORDER)])
    # The derivative's polynomial: coefficient d of p^(k) is taylor[d + k] (d + k)! / d!
    taylor = np.column_stack([taylor[:, d + derivative] * math.perm(d + derivative, derivative)
                              for d in range(ORDER - derivative)])
    interval = knot_interval(knots, x)
    row = interval - (ORDER - 1)
    offset = x - knots[interval]
    out = taylor[row, -1].copy()
    for d in range(ORDER - derivative - 2, -1, -1):
        out *= offset
        out += taylor[row, d]
    return out


def penalty_bands(knots: NDArray[np.float64]) -> NDArray[np.float64]:
    """The roughness penalty ``Omega[j, k] = integral B''[j] B''[k]`` in banded form.

    As R's ``sgram``: on each knot interval B'' is linear, and the integral of the product of
    two linear pieces is taken with the weight 0.3330 on the product of their slopes.

    Parameters
    ----------
    knots : array of shape (n_coefficients + 4,)

    Returns
    -------
    array of shape (4, n_coefficients)
        Row ``d`` holds ``Omega[j, j + d]`` at column ``j`` (zero past the end).
    """
    n_coefficients = knots.shape[0] - ORDER
    interval = np.arange(ORDER - 1, n_coefficients)
    width = knots[interval + 1] - knots[interval]
    left = basis_values(knots, interval, knots[interval], derivative=2)
    slope = basis_values(knots, interval, knots[interval + 1], derivative=2) - left
    bands = np.zeros((ORDER, n_coefficients))
    first = interval - (ORDER - 1)
    for d in range(ORDER):
        for r in range(ORDER - d):
            s = r + d
            contribution = width * (left[:, r] * left[:, s]
                                    + (slope[:, r] * left[:, s] + slope[:, s] * left[:, r]) * 0.5
                                    + slope[:, r] * slope[:, s] * _SGRAM_THIRD)
            np.add.at(bands[d], first + r, contribution)
    return bands
