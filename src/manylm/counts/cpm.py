"""Counts per million and log-CPM with a library-size-scaled prior count (edgeR's ``cpm``)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["cpm"]


def cpm(counts: ArrayLike, lib_size: ArrayLike, *, log: bool = False,
        prior_count: float = 2.0) -> NDArray[np.float64]:
    """Counts per million of a genes x samples matrix.

    With ``log=True``: log2((y + a) / (L + 2a) * 1e6) where the prior a = prior_count * L /
    mean(L) is scaled by each library size L, as edgeR's ``cpm(log = TRUE)``.
    """
    y = np.asarray(counts, dtype=np.float64)
    sizes = np.asarray(lib_size, dtype=np.float64)
    if not log:
        return np.asarray(y / sizes[None, :] * 1e6)
    prior = prior_count * sizes / sizes.mean()
    return np.asarray(np.log2((y + prior[None, :]) / (sizes + 2 * prior)[None, :] * 1e6))
