"""The per-feature numbers of one tested coefficient that several plots share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.errors import InputError
from manylm.inference.adjust import p_adjust

__all__ = ["CoefficientStatistics", "as_coefficient_statistics",
           "check_significance", "coefficient_statistics"]


@dataclass(frozen=True)
class CoefficientStatistics:
    """Estimate, p-value and adjusted p-value of one coefficient, for every feature.

    Attributes
    ----------
    name : str
    estimate, p_value, adj_p_value, mean : arrays of shape (n_features,)
    feature_ids : Index
    """

    name: str
    estimate: NDArray[np.float64]
    p_value: NDArray[np.float64]
    adj_p_value: NDArray[np.float64]
    mean: NDArray[np.float64]
    feature_ids: pd.Index


def coefficient_statistics(result: Any, coef: str | int, *,
                           adjust: str = "BH") -> CoefficientStatistics:
    """Gather one coefficient's estimates and (adjusted) p-values from a moderated fit.

    Parameters
    ----------
    result : ModeratedFit
        From :func:`manylm.ebayes`, :func:`manylm.treat` or
        :func:`manylm.ordinary_statistics` (treat's p-values test |estimate| > lfc).
    coef : str or int
        Coefficient (or contrast) name, or its position.
    adjust : str
        Multiple-testing method of :func:`manylm.p_adjust`.

    Returns
    -------
    CoefficientStatistics
    """
    names = list(result.coefficient_names)
    if isinstance(coef, (int, np.integer)) and not isinstance(coef, bool):
        if not 0 <= int(coef) < len(names):
            raise InputError(f"Coefficient position {coef} is out of range: the fit has "
                             f"{len(names)} coefficients ({', '.join(names)}).")
        position = int(coef)
    elif coef in names:
        position = names.index(str(coef))
    else:
        raise InputError(f"{coef!r} is not a coefficient of the fit. Coefficients: "
                         f"{', '.join(names)}.")
    p_value = np.asarray(result.p_value_of(position), dtype=np.float64)
    return CoefficientStatistics(
        name=names[position],
        estimate=np.asarray(result.fit.coefficients[:, position], dtype=np.float64),
        p_value=p_value,
        adj_p_value=p_adjust(p_value, adjust),
        mean=np.asarray(result.fit.mean, dtype=np.float64),
        feature_ids=result.feature_ids,
    )


def as_coefficient_statistics(result: Any, coef: str | int | None,
                              adjust: str) -> CoefficientStatistics:
    """``result`` itself when it is already a :class:`CoefficientStatistics`, else gathered."""
    if isinstance(result, CoefficientStatistics):
        return result
    if coef is None:
        raise InputError("Name the coefficient to plot with coef=.")
    return coefficient_statistics(result, coef, adjust=adjust)


def check_significance(significance: float) -> None:
    """The adjusted p-value threshold must be in (0, 1]."""
    if not 0 < significance <= 1:
        raise InputError(f"The 'significance' parameter must be in (0, 1]. Got {significance}.")
