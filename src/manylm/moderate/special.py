"""Special functions limma needs that SciPy lacks: the inverse of the trigamma function."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import polygamma

__all__ = ["trigamma", "trigamma_inverse"]


def trigamma(x: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(polygamma(1, x), dtype=np.float64)


def trigamma_inverse(x: ArrayLike) -> NDArray[np.float64]:
    """Solve trigamma(y) = x for y > 0 (limma's ``trigammaInverse``).

    Newton's method on 1/trigamma(y), which is nearly linear in y, from the starting value and
    with the asymptotic shortcuts of Smyth (2004), limma's ``trigammaInverse``.
    """
    x = np.asarray(x, dtype=np.float64)
    scalar = x.ndim == 0
    x = np.atleast_1d(x).copy()
    y = np.full_like(x, np.nan)
    valid = np.isfinite(x) & (x >= 0)
    y[np.isinf(x) & (x > 0)] = 0.0  # trigamma(0+) = Inf
    y[np.isfinite(x) & (x < 0)] = np.nan
    large = valid & (x > 1e7)
    small = valid & (x < 1e-6)
    y[large] = 1.0 / np.sqrt(x[large])
    y[small] = 1.0 / x[small]
    work = valid & ~large & ~small
    if np.any(work):
        target = x[work]
        estimate = 0.5 + 1.0 / target
        for _ in range(50):
            tri = trigamma(estimate)
            dif = tri * (1.0 - tri / target) / polygamma(2, estimate)
            estimate = estimate + dif
            if np.max(-dif / estimate) < 1e-8:
                break
        y[work] = estimate
    return y[0] if scalar else y
