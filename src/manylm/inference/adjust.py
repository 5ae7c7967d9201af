"""Multiple-testing adjustment of p-values (R's ``p.adjust``), NaN-preserving."""

from __future__ import annotations

from typing import Literal

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from manylm.errors import InputError
from manylm.inference.ordering import stable_argsort

__all__ = ["ADJUST_METHODS", "adjust_in_order", "adjust_sorted", "p_adjust"]

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
    if key == "none":
        return p.copy()
    out = np.full(p.shape, np.nan)
    out[ascending] = adjust_sorted(p[ascending], method)
    return out


def adjust_sorted(p_sorted: NDArray[np.floating], method: str, *,
                  out: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """:func:`p_adjust` of p-values already in ascending order (NaN last), in that order.

    A table sorted by p-value holds them so: its adjusted column is then one sequential pass.
    ``out``, a float64 vector of the same length that is not ``p_sorted``, receives them
    (memory reused).
    """
    key = _ALIASES.get(str(method).lower()) if method not in ADJUST_METHODS else method
    values: NDArray[np.float64] = np.ascontiguousarray(p_sorted, dtype=np.float64)
    if out is None:
        out = np.empty(values.shape)
    if key == "none":
        out[...] = values
        return out
    out.fill(np.nan)
    n = int(np.count_nonzero(~np.isnan(values)))  # NaN last: the first n are the tests
    if n == 0:
        return out
    tests = values[:n]
    if key == "bonferroni":
        out[:n] = np.minimum(1.0, n * tests)
    elif key == "holm":
        out[:n] = np.minimum(1.0, np.maximum.accumulate((n - np.arange(n)) * tests))
    else:
        factor = float(np.sum(1.0 / np.arange(1, n + 1))) if key == "BY" else 1.0
        _step_up(tests, factor * n, out)
    return out


@numba.njit(cache=True, nogil=True)
def _step_up(p: NDArray[np.float64], scale: float, out: NDArray[np.float64]) -> None:
    """Benjamini-Hochberg (BY: ``scale`` includes its factor) in one pass from the largest p.

    ``p.adjust``: the i-th smallest of n p-values gets min over j >= i of scale / j p_(j),
    capped at 1.
    """
    running = np.inf
    for k in range(p.shape[0] - 1, -1, -1):
        value = scale / (k + 1) * p[k]
        if value < running:
            running = value
        out[k] = min(1.0, running)
