"""Calls of up, down or not significant per feature and coefficient (limma's ``decideTests``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.errors import InputError
from manylm.inference.adjust import ADJUST_METHODS, p_adjust
from manylm.moderate.fstat import f_statistic
from manylm.moderate.student_t import student_t_sf

if TYPE_CHECKING:
    from manylm.moderate.moderated_fit import ModeratedFit

__all__ = ["DECIDE_METHODS", "decide_tests", "hierarchical_calls", "nested_f_calls"]

DECIDE_METHODS: tuple[str, ...] = ("separate", "global", "hierarchical", "nestedF")
_ADJUST_KEYS = {method.lower(): method for method in ADJUST_METHODS} | {"fdr": "BH"}
# R's qf switches to the chi-square limit for denominators above this many df.
_QF_CHISQ_DF = 4e5


def decide_tests(
    result: ModeratedFit,
    *,
    method: str = "separate",
    adjust: str = "BH",
    p_value: float = 0.05,
    lfc: float = 0.0,
) -> pd.DataFrame:
    """-1, 0 or 1 for every feature and coefficient (limma 3.54's ``decideTests``).

    - ``"separate"``: each coefficient's p-values are adjusted on their own.
    - ``"global"``: all p-values of all coefficients are adjusted together, as one family.
    - ``"hierarchical"``: features are first selected by their adjusted moderated F p-value;
      within a selected feature, the coefficients' p-values are adjusted across coefficients
      and compared with ``p_value`` scaled by the multiplicity of the first step (``i/n`` for
      BH, ``i/n / sum(1/k)`` for BY, ``1/(n - i + 1)`` for Holm, ``1/n`` for Bonferroni).
    - ``"nestedF"``: features selected as above; within one, the coefficients are declared
      in decreasing order of |t| while the F statistic, with the larger |t| pulled down to the
      current one, still exceeds the F critical value at the scaled level (limma's
      ``classifyTestsF``).

    A call needs the (adjusted) p-value below ``p_value`` and, when ``lfc > 0``, an estimate
    larger than ``lfc`` in absolute value. Missing p-values give 0 (limma gives NA). For
    ``"hierarchical"`` and ``"nestedF"`` limma stops when an F p-value is missing; here those
    features are called 0 and left out of the F family, which gives limma's calls on the
    other features.

    Parameters
    ----------
    result : ModeratedFit
        From :func:`manylm.ebayes` (``"hierarchical"`` and ``"nestedF"`` need its F
        statistic, so not from :func:`manylm.treat` or a rank-deficient design).
    method : {"separate", "global", "hierarchical", "nestedF"}
    adjust : {"BH", "BY", "holm", "bonferroni", "none"}
        ``"fdr"`` is accepted for ``"BH"``.
    p_value : float
    lfc : float

    Returns
    -------
    DataFrame of int8 of shape (n_features, n_coefficients)
    """
    if method not in DECIDE_METHODS:
        raise InputError(f"The 'method' parameter must be one of {', '.join(DECIDE_METHODS)}. "
                         f"Got {method!r}.")
    key = _ADJUST_KEYS.get(str(adjust).lower())
    if key is None:
        raise InputError(f"The 'adjust' method must be one of {', '.join(ADJUST_METHODS)}. "
                         f"Got {adjust!r}.")
    if not 0 <= p_value <= 1:
        raise InputError(f"The 'p_value' parameter must be in [0, 1]. Got {p_value!r}.")
    if not lfc >= 0:
        raise InputError(f"The 'lfc' parameter must be >= 0. Got {lfc!r}.")
    estimate = result.fit.coefficients
    if method in ("separate", "global"):
        p = result.p_value
        if method == "separate":
            adjusted = np.column_stack([p_adjust(p[:, j], key) for j in range(p.shape[1])])
        else:
            adjusted = p_adjust(p, key)
        with np.errstate(invalid="ignore"):
            # limma: strict inequalities, p < p.value and |estimate| > lfc.
            calls = np.where(adjusted < p_value, np.sign(estimate), 0.0)
        calls = np.nan_to_num(calls).astype(np.int8)
    else:
        if result.F_p_value is None:
            raise InputError(
                f"decide_tests(method={method!r}) needs the moderated F statistic, which this "
                "fit does not have (treat results and rank-deficient designs have none). Use "
                "method='separate' or 'global', or fit estimable coefficients or contrasts."
            )
        df = np.asarray(result.fit.df_residual + result.df_prior, dtype=np.float64)
        df = np.broadcast_to(df, result.F_p_value.shape)
        kernel = hierarchical_calls if method == "hierarchical" else nested_f_calls
        calls = kernel(result.t, result.F_p_value, df, result.fit.cov_unscaled,
                       adjust=key, p_value=p_value)
    if lfc > 0:
        with np.errstate(invalid="ignore"):
            calls = np.where(np.abs(estimate) > lfc, calls, 0).astype(np.int8)
    return pd.DataFrame(calls, index=result.fit.feature_ids,
                        columns=result.fit.coefficient_names)


def _f_selection(f_p_value: NDArray[np.floating], adjust: str,
                 p_value: float) -> tuple[NDArray[np.bool_], float]:
    """Features whose adjusted F p-value is below ``p_value``, and the level for the second step.

    The level is ``p_value`` times limma's multiplicity factor for ``i`` of ``n`` selected.
    """
    with np.errstate(invalid="ignore"):
        selected = p_adjust(f_p_value, adjust) < p_value
    n_selected = int(selected.sum())
    n = int(np.count_nonzero(~np.isnan(f_p_value)))
    factor = {
        "none": 1.0,
        "bonferroni": 1.0 / n if n else 0.0,
        "holm": 1.0 / (n - n_selected + 1),
        "BH": n_selected / n if n else 0.0,
        "BY": n_selected / n / float(np.sum(1.0 / np.arange(1, n + 1))) if n else 0.0,
    }[adjust]
    return selected, p_value * factor


def hierarchical_calls(t: NDArray[np.floating], f_p_value: NDArray[np.floating],
                       df: NDArray[np.floating], cov_unscaled: NDArray[np.floating], *,
                       adjust: str, p_value: float) -> NDArray[np.int8]:
    """``decideTests(method = "hierarchical")`` on arrays.

    Parameters
    ----------
    t : array of shape (n_features, n_coefficients)
    f_p_value : array of shape (n_features,)
        NaN features are never selected.
    df : array of shape (n_features,)
        ``df_residual + df_prior`` (limma recomputes the p-values with it, uncapped).
    cov_unscaled : array of shape (n_coefficients, n_coefficients)
        Unused; the signature is shared with :func:`nested_f_calls`.
    adjust : str
        A canonical method name of :func:`manylm.p_adjust`.
    p_value : float

    Returns
    -------
    array of int8 of shape (n_features, n_coefficients)
    """
    selected, level = _f_selection(f_p_value, adjust, p_value)
    calls = np.zeros(t.shape, dtype=np.int8)
    if not selected.any():
        return calls
    chosen_t = t[selected]
    chosen_df = np.where(df[selected] > 0, df[selected], np.nan)[:, None]
    p = 2 * student_t_sf(np.abs(chosen_t), np.broadcast_to(chosen_df, chosen_t.shape))
    adjusted = _adjust_rows(p, adjust)
    with np.errstate(invalid="ignore"):
        calls[selected] = np.where(adjusted < level, np.sign(chosen_t), 0).astype(np.int8)
    return calls


def nested_f_calls(t: NDArray[np.floating], f_p_value: NDArray[np.floating],
                   df: NDArray[np.floating], cov_unscaled: NDArray[np.floating], *,
                   adjust: str, p_value: float) -> NDArray[np.int8]:
    """``decideTests(method = "nestedF")`` on arrays (limma's ``classifyTestsF`` per feature).

    Parameters as :func:`hierarchical_calls`; ``cov_unscaled`` gives the correlation of the
    t statistics, whitened as for the moderated F.
    """
    selected, level = _f_selection(f_p_value, adjust, p_value)
    calls = np.zeros(t.shape, dtype=np.int8)
    if not selected.any():
        return calls
    x = t[selected]
    chosen_df = df[selected]
    n_tests = x.shape[1]
    if n_tests == 1:
        p = 2 * student_t_sf(np.abs(x[:, 0]), np.where(chosen_df > 0, chosen_df, np.nan))
        calls[selected, 0] = np.where(p < level, np.sign(x[:, 0]), 0).astype(np.int8)
        return calls
    f, rank = f_statistic(x, cov_unscaled)
    critical = _f_critical_value(level, rank, chosen_df)
    signs = np.sign(x).astype(np.int8)
    magnitude = np.abs(x)
    order = np.argsort(-magnitude, axis=1, kind="stable")  # ties: the earlier coefficient first
    sorted_magnitude = np.take_along_axis(magnitude, order, axis=1)
    position = np.empty_like(order)
    np.put_along_axis(position, order, np.arange(n_tests)[None, :], axis=1)
    rows = np.arange(x.shape[0])
    chosen_calls = np.zeros(x.shape, dtype=np.int8)
    going = f > critical
    chosen_calls[rows[going], order[going, 0]] = signs[rows[going], order[going, 0]]
    for step in range(1, n_tests):
        # The coefficients already called are pulled down to the step-th largest |t|.
        pulled = np.where(position < step, sorted_magnitude[:, step][:, None], magnitude)
        going &= f_statistic(signs * pulled, cov_unscaled)[0] > critical
        chosen_calls[rows[going], order[going, step]] = signs[rows[going], order[going, step]]
    calls[selected] = chosen_calls
    return calls


def _f_critical_value(level: float, df1: int, df2: NDArray[np.floating]) -> NDArray[np.float64]:
    """Upper ``level`` quantile of F(df1, df2) per feature, with R's chi-square limit."""
    from scipy import stats  # imported when used: ~0.3 s
    df2 = np.asarray(df2, dtype=np.float64)
    large = df2 > max(_QF_CHISQ_DF, df1)
    out = np.empty(df2.shape)
    out[large] = stats.chi2.isf(level, df1) / df1
    small = ~large
    out[small] = stats.f.isf(level, df1, df2[small])
    return out


def _adjust_rows(p: NDArray[np.floating], adjust: str) -> NDArray[np.float64]:
    """``p.adjust`` within each row of a matrix without missing values."""
    n = p.shape[1]
    if adjust == "none":
        return np.asarray(p, dtype=np.float64)
    if adjust == "bonferroni":
        return np.minimum(1.0, n * p)
    ascending = np.argsort(p, axis=1, kind="stable")
    ranked = np.take_along_axis(p, ascending, axis=1)
    if adjust == "holm":
        values = np.minimum(1.0, np.maximum.accumulate((n - np.arange(n)) * ranked, axis=1))
    else:
        factor = float(np.sum(1.0 / np.arange(1, n + 1))) if adjust == "BY" else 1.0
        scaled = (factor * n / np.arange(n, 0, -1)) * ranked[:, ::-1]
        values = np.minimum(1.0, np.minimum.accumulate(scaled, axis=1))[:, ::-1]
    out = np.empty(p.shape)
    np.put_along_axis(out, ascending, values, axis=1)
    return out
