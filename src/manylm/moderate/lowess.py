"""R's ``lowess`` (Cleveland 1979; the ``clowess`` routine of R's stats package), reimplemented.

limma calls it for the trend of the robust prior (``fitFDistRobustly`` via ``loessFit``) and voom
calls it for the mean-variance trend, so its exact choices matter for parity: the neighbourhood
of ``ceil``-free size ``f * n``, tricube weights with the 0.001/0.999 cut-offs, the linear fit
only when the points are spread out, interpolation between anchor points closer than ``delta``,
and bisquare robustness weights from six times the median absolute residual.

The anchor points are visited in order as in R (there are few of them: about 1/``delta``); each
local fit is vectorised over its neighbourhood, and the neighbourhood is found by binary search
instead of R's one-step-at-a-time walk.
"""

from __future__ import annotations

from functools import partial

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
    values = np.empty(chunk.shape[0])
    for position, k in enumerate(chunk):
        i, nleft = anchors[k], nlefts[k]
        value = _local_fit(x, y, i, nleft, nleft + ns - 1, weights)
        values[position] = y[i] if value is None else value
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


def _local_fit(x: NDArray[np.float64], y: NDArray[np.float64], i: int, nleft: int, nright: int,
               robustness: NDArray[np.float64] | None) -> float | None:
    """R's ``lowest``: weighted local linear fit at x[i]; None when every weight is zero."""
    n = x.shape[0]
    xi = x[i]
    span = float(x[-1] - x[0])
    h = max(xi - x[nleft], x[nright] - xi)
    h9, h1 = 0.999 * h, 0.001 * h
    # Ties to the right of nright are included: stop at the first point beyond xi + h9.
    stop = int(np.searchsorted(x, xi + h9, side="right"))
    stop = max(stop, nleft)
    while stop < n and not (abs(x[stop] - xi) > h9 and x[stop] > xi):
        stop += 1
    window = slice(nleft, stop)
    r = np.abs(x[window] - xi)
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(r <= h1, 1.0, (1 - (r / h) ** 3) ** 3)
    weights = np.where(r <= h9, weights, 0.0)
    if robustness is not None:
        weights = weights * robustness[window]
    total = float(weights.sum())
    if total <= 0:
        return None
    weights = weights / total
    xw = x[window]
    if h > 0:
        centre = float(np.sum(weights * xw))
        b = xi - centre
        c = float(np.sum(weights * (xw - centre) ** 2))
        if np.sqrt(c) > 0.001 * span:
            weights = weights * (b / c * (xw - centre) + 1.0)
    return float(np.sum(weights * y[window]))
