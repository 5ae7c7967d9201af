"""The smoothing-parameter search of R's ``smooth.spline``: knot count and Brent's minimiser."""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["brent_minimise", "interior_knot_count"]

# 1 / golden ratio squared, (3 - sqrt(5)) / 2
_GOLDEN = 0.381966011250105151795413165634
_BIG = 1e100


def interior_knot_count(n_unique: int) -> int:
    """How many of ``n_unique`` sorted x values become knots (R's ``.nknots.smspl``).

    All of them below 50; beyond, a count growing like ``log2`` pieces through (50, 50),
    (200, 100), (800, 140), (3200, 200), then ``200 + (n - 3200)^0.2``.
    """
    if n_unique < 50:
        return n_unique
    a1, a2, a3, a4 = math.log2(50), math.log2(100), math.log2(140), math.log2(200)
    if n_unique < 200:
        value = 2.0 ** (a1 + (a2 - a1) * (n_unique - 50) / 150)
    elif n_unique < 800:
        value = 2.0 ** (a2 + (a3 - a2) * (n_unique - 200) / 600)
    elif n_unique < 3200:
        value = 2.0 ** (a3 + (a4 - a3) * (n_unique - 800) / 2400)
    else:
        value = 200.0 + (n_unique - 3200) ** 0.2
    return math.trunc(value)


def _sign_of(magnitude: float, sign: float) -> float:
    """Fortran's SIGN: |magnitude| with the sign of ``sign`` (zero counts as positive)."""
    return abs(magnitude) if sign >= 0 else -abs(magnitude)


def brent_minimise(
    criterion: Callable[[float], float],
    *,
    lower: float = -1.5,
    upper: float = 1.5,
    tolerance: float = 1e-4,
    relative_eps: float = 2e-8,
    max_iterations: int = 500,
    stop: Callable[[], bool] = lambda: False,
) -> tuple[float, float, int]:
    """Minimise ``criterion`` on [lower, upper] as R's ``sbart`` does.

    Brent (1973), *Algorithms for Minimization without Derivatives*, ch. 5 (``localmin``):
    golden-section steps, parabolic interpolation when it is safe, never two evaluations closer
    than ``relative_eps |x| + tolerance / 3``. Criterion values at or above 1e100 (and
    non-finite ones) force golden-section steps, as in R. ``stop()`` ends the search after the
    evaluation that made it true (R stops when a factorisation fails).

    Returns
    -------
    (best x, criterion at best x, iterations)
    """
    a, b = lower, upper
    x = w = v = a + _GOLDEN * (b - a)
    e = d = 0.0
    fx = criterion(x)
    fv = fw = fx
    iterations = 0
    while not stop():
        midpoint = 0.5 * (a + b)
        tol1 = relative_eps * abs(x) + tolerance / 3.0
        tol2 = 2.0 * tol1
        iterations += 1
        if abs(x - midpoint) <= tol2 - 0.5 * (b - a) or iterations > max_iterations:
            break
        golden = abs(e) <= tol1 or fx >= _BIG or fv >= _BIG or fw >= _BIG
        if not golden:
            r = (x - w) * (fx - fv)
            q = (x - v) * (fx - fw)
            p = (x - v) * q - (x - w) * r
            q = 2.0 * (q - r)
            if q > 0:
                p = -p
            q = abs(q)
            r, e = e, d
            if abs(p) >= abs(0.5 * q * r) or q == 0.0 or p <= q * (a - x) or p >= q * (b - x):
                golden = True
            else:
                d = p / q
                u = x + d
                if u - a < tol2 or b - u < tol2:
                    d = _sign_of(tol1, midpoint - x)
        if golden:
            e = (a - x) if x >= midpoint else (b - x)
            d = _GOLDEN * e
        u = x + (d if abs(d) >= tol1 else _sign_of(tol1, d))
        fu = criterion(u)
        if not math.isfinite(fu):
            fu = 2.0 * _BIG
        if fu <= fx:
            if u >= x:
                a = x
            else:
                b = x
            v, fv = w, fw
            w, fw = x, fx
            x, fx = u, fu
        else:
            if u < x:
                a = u
            else:
                b = u
            if fu <= fw or w == x:
                v, fv = w, fw
                w, fw = u, fu
            elif fu <= fv or v == x or v == w:
                v, fv = u, fu
    return x, fx, iterations
