"""R's ``lowess`` (Cleveland 1979; the ``clowess`` routine of R's stats package), reimplemented.

limma calls it for the trend of the robust prior (``fitFDistRobustly`` via ``loessFit``) and voom
calls it for the mean-variance trend, so its exact choices matter for parity: the neighbourhood
of ``ceil``-free size ``f * n``, tricube weights with the 0.001/0.999 cut-offs, the linear fit
only when the points are spread out, interpolation between anchor points closer than ``delta``,
and bisquare robustness weights from six times the median absolute residual.

The anchor points are planned in order as in R (there are few of them: about 1/``delta``), the
neighbourhood found by binary search instead of R's one-step-at-a-time walk; the local fits are
compiled (numba) and summed in R's order, and the anchors of one iteration run on every core.
"""

from __future__ import annotations

from functools import partial

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from manylm.parallel import parallel_map

__all__ = ["lowess"]


def lowess(
    x: ArrayLike, y: ArrayLike, *, f: float = 2 / 3, iterations: int = 3, delta: float | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Locally weighted linear regression of ``y`` on ``x``, as R's ``lowess(x, y, f, iter)``.

    Returns the sorted ``x`` and the fitted values in that order (as R does).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    if delta is None:
        delta = 0.01 * float(xs[-1] - xs[0]) if xs.size else 0.0
    return xs, _clowess(xs, ys, f, iterations, delta)


def _clowess(x: NDArray[np.float64], y: NDArray[np.float64], f: float, nsteps: int,
             delta: float) -> NDArray[np.float64]:
    n = x.shape[0]
    if n < 2:
        return y.copy()
    ns = max(2, min(n, int(f * n + 1e-7)))
    anchors, nlefts, run_ends = _anchor_plan(x, ns, delta)
    fitted = np.empty(n)
    robustness = np.ones(n)
    for iteration in range(nsteps + 1):
        weights = robustness if iteration > 0 else None
        # The anchors and their neighbourhoods depend on x alone, so the local fits of one
        # robustness iteration are independent: they run on every core.
        chunks = np.array_split(np.arange(len(anchors)), min(len(anchors), 8))
        values = np.concatenate(parallel_map(
            partial(_fit_anchors, x, y, anchors, nlefts, ns, weights), chunks))
        previous = -1
        for k, i in enumerate(anchors):
            fitted[i] = values[k]
            if previous < i - 1 and previous >= 0:
                # Points skipped since the last anchor: linear interpolation, as clowess.
                between = slice(previous + 1, i)
                alpha = (x[between] - x[previous]) / (x[i] - x[previous])
                fitted[between] = alpha * fitted[i] + (1 - alpha) * fitted[previous]
            fitted[i + 1 : run_ends[k] + 1] = fitted[i]  # ties take the anchor's value
            previous = run_ends[k]
        residuals = y - fitted
        if iteration == nsteps:
            break
        scale = float(np.mean(np.abs(residuals)))
        cmad = 6.0 * float(np.median(np.abs(residuals)))
        if cmad < 1e-7 * scale:
            break
        r = np.abs(residuals)
        robustness = np.where(
            r <= 0.001 * cmad, 1.0, np.where(r <= 0.999 * cmad, (1 - (r / cmad) ** 2) ** 2, 0.0)
        )
    return fitted


def _fit_anchors(x: NDArray[np.float64], y: NDArray[np.float64], anchors: list[int],
                 nlefts: list[int], ns: int, weights: NDArray[np.float64] | None,
                 chunk: NDArray[np.intp]) -> NDArray[np.float64]:
    """Local fits at some anchors (y itself where every weight is zero)."""
    return _fit_anchor_chunk(
        x, y, np.asarray(anchors, dtype=np.int64)[chunk], np.asarray(nlefts, dtype=np.int64)[chunk],
        ns, np.ones(1) if weights is None else weights, weights is not None,
    )


@numba.njit(cache=True, nogil=True)
def _fit_anchor_chunk(x, y, anchors, nlefts, ns, robustness, robust):
    values = np.empty(anchors.shape[0])
    for k in range(anchors.shape[0]):
        values[k] = _local_fit(x, y, anchors[k], nlefts[k], nlefts[k] + ns - 1, robustness,
                               robust)
    return values


def _anchor_plan(x: NDArray[np.float64], ns: int, delta: float
                 ) -> tuple[list[int], list[int], list[int]]:
    """clowess's walk over x: the anchor points, their neighbourhoods, and their tie runs."""
    n = x.shape[0]
    pair_sums = x[: n - ns] + x[ns:] if ns < n else np.empty(0)
    anchors: list[int] = []
    nlefts: list[int] = []
    run_ends: list[int] = []
    nleft = 0
    i = 0
    while True:
        nleft = _neighbourhood(x, i, nleft, ns, pair_sums)
        anchors.append(i)
        nlefts.append(nleft)
        last = int(np.searchsorted(x, x[i], side="right")) - 1  # ties with the anchor
        last = max(last, i)
        run_ends.append(last)
        beyond = int(np.searchsorted(x, x[i] + delta, side="right"))
        i = max(last + 1, beyond - 1)
        if last >= n - 1:
            break
    return anchors, nlefts, run_ends


def _neighbourhood(x: NDArray[np.float64], i: int, nleft: int, ns: int,
                   pair_sums: NDArray[np.float64]) -> int:
    """Leftmost index of the ns nearest points to x[i], never left of the previous one.

    R moves the window right while x[i] - x[nleft] > x[nright + 1] - x[i]; that condition is
    monotone in nleft, so the stopping place is found by bisection and then checked exactly.
    """
    n = x.shape[0]
    if nleft + ns >= n:
        return nleft
    candidate = int(np.searchsorted(pair_sums, 2.0 * x[i], side="left"))
    candidate = min(max(candidate, nleft), n - ns)
    # Step back if rounding put us one too far, then forward as R would.
    while candidate > nleft and x[i] - x[candidate - 1] > x[candidate - 1 + ns] - x[i]:
        candidate -= 1
    while candidate + ns < n and x[i] - x[candidate] > x[candidate + ns] - x[i]:
        candidate += 1
    return candidate


@numba.njit(cache=True, nogil=True)
def _local_fit(x, y, i, nleft, nright, robustness, robust):
    """R's ``lowest``: weighted local linear fit at x[i]; y[i] when every weight is zero."""
    n = x.shape[0]
    xi = x[i]
    span = x[n - 1] - x[0]
    h = max(xi - x[nleft], x[nright] - xi)
    h9, h1 = 0.999 * h, 0.001 * h
    # Ties to the right of nright are included: stop at the first point beyond xi + h9.
    stop = max(np.searchsorted(x, xi + h9, side="right"), nleft)
    while stop < n and not (abs(x[stop] - xi) > h9 and x[stop] > xi):
        stop += 1
    width = stop - nleft
    weights = np.empty(width)
    total = 0.0
    for k in range(width):
        r = abs(x[nleft + k] - xi)
        if r > h9:
            w = 0.0
        elif r <= h1:
            w = 1.0
        else:
            w = (1.0 - (r / h) ** 3) ** 3
        if robust:
            w *= robustness[nleft + k]
        weights[k] = w
        total += w
    if total <= 0.0:
        return y[i]
    for k in range(width):
        weights[k] /= total
    if h > 0.0:
        centre = 0.0
        for k in range(width):
            centre += weights[k] * x[nleft + k]
        b = xi - centre
        c = 0.0
        for k in range(width):
            c += weights[k] * (x[nleft + k] - centre) ** 2
        if np.sqrt(c) > 0.001 * span:
            for k in range(width):
                weights[k] *= b / c * (x[nleft + k] - centre) + 1.0
    value = 0.0
    for k in range(width):
        value += weights[k] * y[nleft + k]
    return value
