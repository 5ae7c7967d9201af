"""Natural cubic regression splines, spanning the same space as R's ``splines::ns``.

limma's ``fitFDist`` regresses log-variances on ``ns(Amean, df, intercept=TRUE)``. Fitted
values depend only on the space the basis spans: cubic splines with interior knots at quantiles
of the covariate (R's type-7 quantiles), boundary knots at its range, and zero second derivative
at both boundaries. That space is built here as the null space of the boundary constraints
within the B-spline basis; beyond the boundary knots the splines continue linearly, as
``predict.ns`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import null_space

__all__ = ["NaturalSpline"]

_ORDER = 4  # cubic


@dataclass(frozen=True)
class NaturalSpline:
    """A natural cubic spline basis with an intercept, ``df`` columns in all."""

    knots: NDArray[np.float64]  # full knot vector (boundary knots repeated)
    boundary: tuple[float, float]
    projection: NDArray[np.float64]  # (n_bspline, df) null space of the constraints

    @classmethod
    def fit(cls, x: NDArray[np.float64], df: int) -> NaturalSpline:
        """The basis R's ``ns(x, df=df, intercept=TRUE)`` would choose for ``x``."""
        from scipy.interpolate import BSpline  # with a trend only: ~0.1 s to import

        x = np.asarray(x, dtype=np.float64)
        n_interior = df - 2
        lower, upper = float(np.min(x)), float(np.max(x))
        probabilities = np.linspace(0.0, 1.0, n_interior + 2)[1:-1]
        interior = np.quantile(x, probabilities) if n_interior > 0 else np.empty(0)
        knots = np.concatenate([[lower] * _ORDER, interior, [upper] * _ORDER])
        n_basis = len(knots) - _ORDER
        constraints = np.empty((2, n_basis))
        for j in range(n_basis):
            second = BSpline(knots, np.eye(n_basis)[j], _ORDER - 1).derivative(2)
            constraints[:, j] = second(np.array([lower, upper]))
        projection = null_space(constraints)
        return cls(knots, (lower, upper), projection)

    def _bspline(self, x: NDArray[np.float64], derivative: int = 0) -> NDArray[np.float64]:
        from scipy.interpolate import BSpline

        n_basis = len(self.knots) - _ORDER
        spline = BSpline(self.knots, np.eye(n_basis), _ORDER - 1, extrapolate=True)
        if derivative:
            spline = spline.derivative(derivative)
        return np.asarray(spline(x))

    def evaluate(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Basis values at ``x``, shape (len(x), df); linear beyond the boundary knots."""
        x = np.asarray(x, dtype=np.float64)
        lower, upper = self.boundary
        inside = np.clip(x, lower, upper)
        values = self._bspline(inside)
        outside = (x < lower) | (x > upper)
        if np.any(outside):
            edge = np.where(x[outside] < lower, lower, upper)
            slope = self._bspline(edge, derivative=1)
            values[outside] = self._bspline(edge) + slope * (x[outside] - edge)[:, None]
        return values @ self.projection
