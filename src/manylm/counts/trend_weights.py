"""voom's precision weights: the mean-variance trend evaluated at every fitted log-count.

For gene g and sample j the fitted log2 count is ``coefficients[g] @ design[j] + offset[j]``; the
weight is ``1 / trend(fitted)^4`` where ``trend`` is voom's lowess curve, linear between its knots
and constant beyond them (R's ``approxfun(rule = 2)``). The three steps are fused in one compiled
pass (numba), so the features x samples intermediates are never stored; the knot holding each
value is found through a uniform bucket index, in constant time.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from manylm.parallel import parallel_map

__all__ = ["trend_weights"]

#: Buckets of the knot index per knot: a handful of knots per bucket at most.
_BUCKETS_PER_KNOT = 4


def trend_weights(
    coefficients: NDArray[np.float64],
    design: NDArray[np.float64],
    offset: NDArray[np.float64],
    knots_x: NDArray[np.float64],
    knots_y: NDArray[np.float64],
) -> NDArray[np.float64]:
    """``1 / trend(coefficients @ design.T + offset)^4`` with ``trend`` piecewise linear.

    Parameters
    ----------
    coefficients : array of shape (n_features, n_coefficients)
        Non-estimable coefficients set to zero.
    design : array of shape (n_samples, n_coefficients)
    offset : array of shape (n_samples,)
    knots_x, knots_y : arrays of shape (n_knots,)
        The trend's knots, ``knots_x`` strictly increasing.

    Returns
    -------
    array of shape (n_features, n_samples)
    """
    coefficients = np.ascontiguousarray(coefficients, dtype=np.float64)
    design = np.ascontiguousarray(design, dtype=np.float64)
    offset = np.ascontiguousarray(offset, dtype=np.float64)
    knots_x = np.ascontiguousarray(knots_x, dtype=np.float64)
    knots_y = np.ascontiguousarray(knots_y, dtype=np.float64)
    n_buckets = max(1, _BUCKETS_PER_KNOT * knots_x.size)
    width = float(knots_x[-1] - knots_x[0]) / n_buckets if knots_x.size > 1 else 1.0
    if not width > 0:
        width = 1.0
    edges = knots_x[0] + width * np.arange(n_buckets + 1)
    first_knot = np.clip(np.searchsorted(knots_x, edges, side="right") - 1, 0,
                         max(knots_x.size - 2, 0)).astype(np.int64)
    out = np.empty((coefficients.shape[0], design.shape[0]))
    halves = np.array_split(np.arange(coefficients.shape[0]), 2)

    def run(rows: NDArray[np.intp]) -> None:
        if rows.size:
            _weights_kernel(coefficients, design, offset, knots_x, knots_y, first_knot, width,
                            int(rows[0]), int(rows[-1]) + 1, out)

    parallel_map(run, halves)
    return out


@numba.njit(cache=True, nogil=True)
def _weights_kernel(coefficients, design, offset, knots_x, knots_y, first_knot, width,
                    start, stop, out):
    n_samples, n_coef = design.shape
    n_knots = knots_x.shape[0]
    low, high = knots_x[0], knots_x[n_knots - 1]
    n_buckets = first_knot.shape[0] - 1
    for g in range(start, stop):
        for j in range(n_samples):
            value = offset[j]
            for k in range(n_coef):
                value += coefficients[g, k] * design[j, k]
            if n_knots == 1 or value <= low:
                trend = knots_y[0]
            elif value >= high:
                trend = knots_y[n_knots - 1]
            else:
                bucket = min(int((value - low) / width), n_buckets)
                i = first_knot[bucket]
                while i > 0 and knots_x[i] > value:
                    i -= 1
                while i < n_knots - 2 and knots_x[i + 1] <= value:
                    i += 1
                # R's approx: y0 + (y1 - y0) * ((v - x0) / (x1 - x0)).
                trend = knots_y[i] + (knots_y[i + 1] - knots_y[i]) * (
                    (value - knots_x[i]) / (knots_x[i + 1] - knots_x[i]))
            squared = trend * trend
            out[g, j] = 1.0 / (squared * squared)
