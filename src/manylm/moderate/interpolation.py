"""Linear interpolation as R's ``approx(x, y, xout, rule = 2, ties = mean)``."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["interpolate_constant_ends"]


def interpolate_constant_ends(x: NDArray[np.floating], y: NDArray[np.floating],
                              new_x: NDArray[np.floating]) -> NDArray[np.floating]:
    """Piecewise-linear interpolation; tied x are averaged; constant beyond the ends (rule 2)."""
    unique_x, inverse = np.unique(x, return_inverse=True)
    sums = np.bincount(inverse, weights=y)
    counts = np.bincount(inverse)
    return np.interp(new_x, unique_x, sums / counts)
