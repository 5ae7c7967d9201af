"""Checking a vector of p-values handed to the FDR estimators (q-values, lfdr, pi0)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from manylm.errors import DataError, InputError

__all__ = ["CheckedPValues", "check_p_values"]


class CheckedPValues(NamedTuple):
    """p-values as a flat float array with where the missing ones are.

    Attributes
    ----------
    values : array of shape (n,)
        All p-values, NaN where missing, flattened in C order.
    observed : array of bool of shape (n,)
    shape : tuple of int
        The caller's shape, to give results back in.
    labels : pandas.Index or None
        The index of a Series input.
    """

    values: NDArray[np.float64]
    observed: NDArray[np.bool_]
    shape: tuple[int, ...]
    labels: pd.Index | None


def check_p_values(p_values: ArrayLike, *, name: str = "p_values") -> CheckedPValues:
    """Validate p-values: numbers in [0, 1] or NaN (carried, never counted), at least one present.

    Parameters
    ----------
    p_values : array-like or pandas.Series
    name : str
        The parameter name used in error messages.

    Raises
    ------
    InputError
        Non-numeric values, or values outside [0, 1] (infinities included); the message names
        the first offending entry.
    DataError
        Every p-value is missing.
    """
    labels = p_values.index if isinstance(p_values, pd.Series) else None
    try:
        array = np.asarray(p_values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise InputError(f"'{name}' must be numeric p-values; {error}.") from None
    values = array.ravel()
    observed = ~np.isnan(values)
    outside = observed & ~((values >= 0) & (values <= 1))
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        where = f"feature {labels[first]!r}" if labels is not None else f"position {first}"
        raise InputError(
            f"'{name}' must lie in [0, 1] (NaN for missing); {int(outside.sum())} do not, the "
            f"first at {where} with value {values[first]!r}. Pass raw p-values, not adjusted "
            "values or statistics."
        )
    if not observed.any():
        raise DataError(f"'{name}' has no p-values to work with: all {values.size} are missing.")
    return CheckedPValues(values, observed, array.shape, labels)
