"""Multiple-testing adjustment of p-values (R's ``p.adjust``), NaN-preserving."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from manylm.errors import InputError

__all__ = ["ADJUST_METHODS", "p_adjust"]

AdjustMethod = Literal["BH", "BY", "holm", "bonferroni", "none"]
ADJUST_METHODS: tuple[str, ...] = ("BH", "BY", "holm", "bonferroni", "none")
_ALIASES = {"fdr": "BH", "bh": "BH", "by": "BY", "holm": "holm", "bonferroni": "bonferroni",
            "none": "none"}


def p_adjust(p: ArrayLike, method: str = "BH") -> NDArray[np.float64]:
    """Adjusted p-values; NaN stays NaN and does not count as a test (as ``p.adjust``).

    Methods: Benjamini-Hochberg (``"BH"``, alias ``"fdr"``), Benjamini-Yekutieli (``"BY"``),
    Holm (``"holm"``), Bonferroni (``"bonferroni"``), ``"none"``. Works on any shape (a matrix is
    adjusted as one family, as limma's ``decideTests(method="global")``).
    """
    key = _ALIASES.get(str(method).lower()) if method not in ADJUST_METHODS else method
    if key is None:
        raise InputError(
            f"The 'adjust' method must be one of {', '.join(ADJUST_METHODS)}. Got {method!r}."
        )
    values = np.asarray(p, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    flat = values.ravel()
    keep = ~np.isnan(flat)
    q = flat[keep]
    n = q.shape[0]
    if n == 0 or key == "none":
        return values.copy() if key == "none" else out
    if key == "bonferroni":
        adjusted = np.minimum(1.0, n * q)
    elif key == "holm":
        order = np.argsort(q, kind="stable")
        scaled = (n - np.arange(n)) * q[order]
        adjusted = np.empty(n)
        adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    else:
        order = np.argsort(q, kind="stable")[::-1]
        ranks = np.arange(n, 0, -1)
        factor = float(np.sum(1.0 / np.arange(1, n + 1))) if key == "BY" else 1.0
        scaled = factor * n / ranks * q[order]
        adjusted = np.empty(n)
        adjusted[order] = np.minimum(1.0, np.minimum.accumulate(scaled))
    result = out.ravel()
    result[keep] = adjusted
    return result.reshape(values.shape)
