"""R's default (type 7) sample quantile, computed with R's own arithmetic."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["type7_quantile"]


def type7_quantile(sorted_values: NDArray[np.float64], probability: float) -> float:
    """The ``probability`` quantile of already sorted values (``quantile(x, p, type = 7)``).

    Hyndman & Fan (1996), *Sample quantiles in statistical packages*, definition 7. Written as R
    writes it, ``(1 - h) x[lo] + h x[hi]``, because numpy's interpolation rounds differently in
    the last bit and qvalue's bootstrap pi0 compares such values for equality.

    Parameters
    ----------
    sorted_values : array of shape (n,), ascending, no NaN, n >= 1
    probability : float in [0, 1]
    """
    n = sorted_values.shape[0]
    index = 1.0 + (n - 1) * probability  # 1-based, as R
    lo, hi = math.floor(index), math.ceil(index)
    low_value = float(sorted_values[lo - 1])
    high_value = float(sorted_values[hi - 1])
    h = index - lo
    if index > lo and high_value != low_value:
        return (1.0 - h) * low_value + h * high_value
    return low_value
