"""Which columns of a design matrix can be estimated.

Reproduces the rank decision of R's ``lm.fit`` (LINPACK ``dqrdc2`` with limited column pivoting,
tolerance 1e-7), which limma's ``lmFit`` and ``nonEstimable`` rely on: columns are taken in
order, and a column is non-estimable when the norm of what is left of it, after projecting out
the columns already accepted, falls below ``tol`` times its original norm.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["RANK_TOLERANCE", "constant_in_span", "estimable_columns"]

#: limma / ``lm.fit`` tolerance for declaring a column linearly dependent.
RANK_TOLERANCE = 1e-7


def estimable_columns(
    design: NDArray[np.float64], tol: float = RANK_TOLERANCE
) -> NDArray[np.bool_]:
    """Boolean mask of the design columns that are estimable, in ``dqrdc2``'s pivoting order.

    Parameters
    ----------
    design : array of shape (n_samples, n_coefficients)
    tol : float
        Relative tolerance on the residual norm of each column (limma uses 1e-7).
    """
    design = np.asarray(design, dtype=np.float64)
    n_samples, n_coef = design.shape
    accepted = np.zeros(n_coef, dtype=bool)
    basis: list[NDArray[np.float64]] = []
    for j in range(n_coef):
        column = design[:, j].copy()
        norm = float(np.linalg.norm(column))
        reference = norm if norm > 0 else 1.0
        if len(basis) >= n_samples:
            continue
        # Two rounds of Gram-Schmidt keep the residual accurate near the threshold.
        for _ in range(2):
            for q in basis:
                column -= (q @ column) * q
        residual = float(np.linalg.norm(column))
        if residual >= tol * reference:
            accepted[j] = True
            basis.append(column / residual)
    return accepted


def constant_in_span(design: NDArray[np.floating]) -> bool:
    """Whether the all-ones vector is a combination of the design's columns.

    Then each feature may be centred on its mean before fitting: residuals do not change, and
    sums of squares keep their accuracy for large means.
    """
    q, _ = np.linalg.qr(np.asarray(design, dtype=np.float64))
    ones = np.ones(q.shape[0])
    return bool(np.linalg.norm(ones - q @ (q.T @ ones)) < 1e-10 * np.sqrt(q.shape[0]))
