"""The penalised least-squares system behind a smoothing spline, solved for many penalties.

For B-spline basis ``X`` (n_unique x n_coefficients, four non-zero entries per row), weights
``W`` and roughness penalty ``Omega``: ``(X'WX + lambda Omega) c = X'Wy``, its fitted values and
the leverages ``diag(X (X'WX + lambda Omega)^-1 X' W)``, all in banded form (R's ``stxwx``,
``sslvrg`` and ``sinerp``).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from numpy.typing import NDArray

from manylm.inference.bspline_basis import ORDER, basis_values, knot_interval, penalty_bands

__all__ = ["PenalisedSystem"]

_LEVERAGE_NUDGE = 1e-11  # sslvrg evaluates the leverage of a point on the last knot just inside


class PenalisedSystem:
    """``(X'WX + lambda Omega) c = X'Wy`` for one data set, solved for many lambdas."""

    def __init__(self, knots: NDArray[np.float64], x: NDArray[np.float64],
                 y: NDArray[np.float64], weights: NDArray[np.float64]) -> None:
        self.knots = knots
        n_coefficients = knots.shape[0] - ORDER
        interval = knot_interval(knots, x)
        self.first = interval - (ORDER - 1)
        self.basis = basis_values(knots, interval, x)
        # The leverage of a point on the last knot is taken just inside the last interval.
        at_end = x >= knots[n_coefficients]
        leverage_x = np.where(at_end, knots[n_coefficients] - _LEVERAGE_NUDGE, x)
        self.leverage_basis = basis_values(knots, interval, leverage_x)
        self.weights = weights
        self.gram = np.zeros((ORDER, n_coefficients))
        self.xwy = np.zeros(n_coefficients)
        for r in range(ORDER):
            column = self.first + r
            self.xwy += np.bincount(column, weights=weights * y * self.basis[:, r],
                                    minlength=n_coefficients)
            for d in range(ORDER - r):
                self.gram[d] += np.bincount(
                    column, weights=weights * self.basis[:, r] * self.basis[:, r + d],
                    minlength=n_coefficients)
        self.penalty = penalty_bands(knots)
        # R's spar scale: lambda relative to the ratio of the traces (inner diagonal only).
        inner = slice(2, n_coefficients - 3)
        self.trace_ratio = float(np.sum(self.gram[0, inner]) / np.sum(self.penalty[0, inner]))

    def spar_to_lambda(self, spar: float) -> float:
        return self.trace_ratio * 16.0 ** (spar * 6.0 - 2.0)

    def solve(self, lambda_: float) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                            NDArray[np.float64]] | None:
        """Coefficients, fitted values and leverages; None if the system is not positive."""
        n_coefficients = self.xwy.shape[0]
        banded = np.zeros((ORDER, n_coefficients))  # LAPACK upper storage: row 3 is the diagonal
        for d in range(ORDER):
            banded[ORDER - 1 - d, d:] = (self.gram[d] + lambda_ * self.penalty[d])[
                :n_coefficients - d]
        try:
            factor = scipy.linalg.cholesky_banded(banded, lower=False, check_finite=False)
        except np.linalg.LinAlgError:
            return None
        coefficients = scipy.linalg.cho_solve_banded((factor, False), self.xwy,
                                                     check_finite=False)
        columns = self.first[:, None] + np.arange(ORDER)
        fitted = np.einsum("nr,nr->n", self.basis, coefficients[columns])
        inverse = _inverse_bands(factor)
        b = self.leverage_basis
        quadratic = np.zeros(b.shape[0])
        for r in range(ORDER):
            for s in range(r, ORDER):
                term = b[:, r] * b[:, s] * inverse[s - r][self.first + r]
                quadratic += term if s == r else 2.0 * term
        return coefficients, fitted, quadratic * self.weights


def _inverse_bands(factor: NDArray[np.float64]) -> NDArray[np.float64]:
    """The four central bands of ``A^-1`` from the banded Cholesky factor ``U`` (A = U'U).

    Hutchinson & de Hoog (1985), *Smoothing noisy data with spline functions*, Numer. Math. 47:
    row ``j`` of ``U A^-1 = U^-T`` gives ``A^-1[j, j + l]`` from rows ``j + 1 .. j + 3``, so one
    backward sweep yields the band without forming the inverse. Returns ``bands[d, j] =
    A^-1[j, j + d]``.
    """
    n = factor.shape[1]
    pad = [0.0] * (ORDER - 1)  # entries past the end are zero, so the sweep needs no tests
    diagonal = factor[ORDER - 1].tolist()
    u1 = factor[ORDER - 2, 1:].tolist() + pad[:2]  # U[j, j + 1]
    u2 = factor[ORDER - 3, 2:].tolist() + pad[:3]  # U[j, j + 2]
    u3 = factor[ORDER - 4, 3:].tolist() + pad  # U[j, j + 3]
    b0, b1, b2, b3 = ([0.0] * (n + ORDER - 1) for _ in range(ORDER))
    for j in range(n - 1, -1, -1):
        c0 = 1.0 / diagonal[j]
        c1, c2, c3 = u1[j] * c0, u2[j] * c0, u3[j] * c0
        s1 = -(c1 * b0[j + 1] + c2 * b1[j + 1] + c3 * b2[j + 1])
        s2 = -(c1 * b1[j + 1] + c2 * b0[j + 2] + c3 * b1[j + 2])
        s3 = -(c1 * b2[j + 1] + c2 * b1[j + 2] + c3 * b0[j + 3])
        b0[j] = c0 * c0 - (c1 * s1 + c2 * s2 + c3 * s3)
        b1[j], b2[j], b3[j] = s1, s2, s3
    return np.array([b0[:n], b1[:n], b2[:n], b3[:n]])
