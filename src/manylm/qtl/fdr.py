"""Benjamini-Hochberg over every test performed, from the pairs that were written.

A scan writes only the pairs with ``p <= threshold`` but performs ``m`` tests. Every test with
``p <= threshold`` is written, so the rank of a written p-value among all ``m`` tests is its rank
among the written ones, and

    adj_(i) = min(1, min over written ranks j >= i of p_(j) * m / j, U)

where ``U`` is the same minimum over the unwritten tests. Each unwritten test has
``p_(j) > threshold`` and ``j <= m``, so ``U > threshold``: a written adjusted p-value that is
at most the threshold is exactly R's ``p.adjust(p_all, "BH")``; one above it is an upper bound
of the exact value (both exceed the threshold, so decisions at any FDR level up to the
threshold are exact). With a threshold of 1 every test is written and all values are exact.
Matrix eQTL computes its FDR the same way from the pairs it keeps.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["bh_adjust_written"]


def bh_adjust_written(p_written: NDArray[np.floating], n_tests: int) -> NDArray[np.float64]:
    """BH-adjusted p-values of the written pairs, counting ``n_tests`` tests in all.

    Parameters
    ----------
    p_written : array of shape (n_written,)
        p-values of the written pairs (every test with p <= the threshold), any order.
    n_tests : int
        All tests performed in the family (>= n_written).

    Returns
    -------
    array of float64, shape (n_written,)
        In the input order.
    """
    p = np.asarray(p_written, dtype=np.float64)
    out = np.empty(p.shape)
    if p.size == 0:
        return out
    m = max(int(n_tests), p.size)
    order = np.argsort(p)  # tied p-values get the same adjusted value whatever their order
    ranks = np.arange(1, p.size + 1, dtype=np.float64)
    scaled = p[order] * (m / ranks)
    out[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return out
