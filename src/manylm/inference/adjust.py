"""Multiple-testing adjustment of p-values (R's ``p.adjust``), NaN-preserving."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from manylm.errors import InputError
from manylm.inference.ordering import stable_argsort

__all__ = ["ADJUST_METHODS", "adjust_in_order", "p_adjust"]

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
    if key == "none":
        return values.copy()
    flat = values.ravel()
    adjusted = adjust_in_order(flat, key, stable_argsort(flat))
    return np.asarray(adjusted, dtype=np.float64).reshape(values.shape)


def adjust_in_order(p: NDArray[np.floating], method: str,
                    ascending: NDArray[np.intp]) -> NDArray[np.floating]:
    """:func:`p_adjust` of a vector whose ascending order (NaN last) is already known.

    A table sorted by p-value needs that order anyway; sharing it saves the second sort.
    """
    key = _ALIASES.get(str(method).lower()) if method not in ADJUST_METHODS else method
    out = np.full(p.shape, np.nan)
    if key == "none":
        return p.copy()
    n = int(np.count_nonzero(~np.isnan(p)))
    if n == 0:
        return out
    order = ascending[:n]  # NaN sort last: the first n are the tests
    q = p[order]
    if key == "bonferroni":
        out[order] = np.minimum(1.0, n * q)
    elif key == "holm":
        out[order] = np.minimum(1.0, np.maximum.accumulate((n - np.arange(n)) * q))
    else:
        factor = float(np.sum(1.0 / np.arange(1, n + 1))) if key == "BY" else 1.0
        scaled = factor * n / np.arange(n, 0, -1) * q[::-1]
        out[order[::-1]] = np.minimum(1.0, np.minimum.accumulate(scaled))
    return out
