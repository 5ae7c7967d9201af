"""Calls of up, down or not significant per feature and coefficient (limma's ``decideTests``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from manylm.errors import InputError
from manylm.inference.adjust import p_adjust

if TYPE_CHECKING:
    from manylm.moderate.moderated_fit import ModeratedFit

__all__ = ["decide_tests"]


def decide_tests(
    result: ModeratedFit,
    *,
    method: str = "separate",
    adjust: str = "BH",
    p_value: float = 0.05,
    lfc: float = 0.0,
) -> pd.DataFrame:
    """-1, 0 or 1 for every feature and coefficient.

    ``method="separate"`` adjusts each coefficient's p-values on their own; ``"global"``
    adjusts all of them together as one family (limma's ``decideTests``). NaN p-values give 0.
    """
    if method not in ("separate", "global"):
        raise InputError(f"The 'method' parameter must be 'separate' or 'global'. Got {method!r}.")
    p = result.p_value
    if method == "separate":
        adjusted = np.column_stack([p_adjust(p[:, j], adjust) for j in range(p.shape[1])])
    else:
        adjusted = p_adjust(p, adjust)
    estimate = result.fit.coefficients
    with np.errstate(invalid="ignore"):
        # limma: strict inequalities, p < p.value and |estimate| > lfc.
        significant = (adjusted < p_value) & ((np.abs(estimate) > lfc) if lfc > 0 else True)
        calls = np.where(significant, np.sign(estimate), 0.0)
    calls = np.nan_to_num(calls).astype(np.int8)
    return pd.DataFrame(calls, index=result.fit.feature_ids,
                        columns=result.fit.coefficient_names)
