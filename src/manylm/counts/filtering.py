"""Which genes have enough counts to be analysed (edgeR's ``filterByExpr``).

Chen, Lun & Smyth (2016), "From reads to genes to pathways", F1000Research 5:1438: keep genes
with a count-per-million above ``min_count`` / median library size in at least as many samples
as the smallest group (or the smallest design cell, from the hat matrix), and a total count of
at least ``min_total_count``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from manylm.design.estimability import estimable_columns

__all__ = ["filter_by_expr"]


def filter_by_expr(
    counts: ArrayLike,
    *,
    design: ArrayLike | None = None,
    group: ArrayLike | None = None,
    lib_size: ArrayLike | None = None,
    min_count: float = 10,
    min_total_count: float = 15,
    large_n: float = 10,
    min_prop: float = 0.7,
) -> NDArray[np.bool_]:
    """Boolean mask of the genes (rows) to keep, as edgeR 3.40's ``filterByExpr``."""
    y = np.asarray(counts, dtype=np.float64)
    sizes = y.sum(axis=0) if lib_size is None else np.asarray(lib_size, dtype=np.float64)
    if group is not None:
        _, group_counts = np.unique(np.asarray(group, dtype=str), return_counts=True)
        min_sample_size = float(group_counts.min())
    elif design is not None:
        min_sample_size = 1.0 / float(np.max(_hat_values(np.asarray(design, dtype=float))))
    else:
        min_sample_size = float(y.shape[1])
    if min_sample_size > large_n:
        min_sample_size = large_n + (min_sample_size - large_n) * min_prop
    cutoff = min_count / float(np.median(sizes)) * 1e6
    cpm = y / sizes[None, :] * 1e6
    tol = 1e-14
    enough_samples = (cpm >= cutoff).sum(axis=1) >= (min_sample_size - tol)
    enough_total = y.sum(axis=1) >= (min_total_count - tol)
    return np.asarray(enough_samples & enough_total)


def _hat_values(design: NDArray[np.float64]) -> NDArray[np.float64]:
    """Leverages of R's ``hat(design)``, which adds an intercept column first."""
    x = np.column_stack([np.ones(design.shape[0]), design])
    x = x[:, estimable_columns(x)]
    q, _ = np.linalg.qr(x)
    return np.asarray(np.sum(q**2, axis=1))
