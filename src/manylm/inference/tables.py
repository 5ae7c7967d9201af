"""Tables of results, one row per feature (limma's ``topTable``, ``topTableF``, ``topTreat``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.errors import EstimabilityError, InputError
from manylm.inference.adjust import p_adjust
from manylm.moderate.student_t import student_t_quantile

if TYPE_CHECKING:
    from manylm.moderate.ebayes import ModeratedFit

__all__ = ["SORT_KEYS", "top_table"]

SORT_KEYS = ("p", "t", "estimate", "B", "mean", "none")
SortKey = Literal["p", "t", "estimate", "B", "mean", "none"]


def top_table(
    result: ModeratedFit,
    coef: Any = None,
    *,
    sort_by: str = "p",
    adjust: str = "BH",
    confint: float = 0.95,
    p_value: float = 1.0,
    lfc: float = 0.0,
    number: int | None = None,
) -> pd.DataFrame:
    """The results table for one coefficient (t test) or several (F test).

    Parameters
    ----------
    result : ModeratedFit
    coef : str, int or list of them, optional
        Coefficient, contrast or term names (``"cancer"`` means all its coefficients), or
        positions. One coefficient gives the t table; several give the F table. Default: all
        coefficients (limma's default for ``topTable`` with ``coef=NULL``), or the only one.
    sort_by : {"p", "t", "estimate", "B", "mean", "none"}
        ``"t"`` and ``"estimate"`` sort by absolute value; ``"none"`` keeps input order.
    adjust : {"BH", "BY", "holm", "bonferroni", "none"}
    confint : float
        Level of the confidence interval of the estimate (t table only).
    p_value, lfc : float
        Keep features with adjusted p <= ``p_value`` and |estimate| >= ``lfc`` (for the F
        table: any tested |estimate| > ``lfc``).
    number : int, optional
        Keep the first ``number`` rows after sorting.

    Returns
    -------
    DataFrame indexed by feature. t table columns: ``estimate, ci_low, ci_high, mean, t,
    p_value, adj_p_value`` and ``lods`` when moderated (not for treat). F table columns: one per
    tested coefficient (its estimate), then ``mean, F, p_value, adj_p_value``.
    """
    fit = result.fit
    if sort_by not in SORT_KEYS:
        raise InputError(f"The 'sort_by' parameter must be one of {', '.join(SORT_KEYS)}. Got "
                         f"{sort_by!r}.")
    if not 0 < confint < 1:
        raise InputError(f"The 'confint' parameter must be in (0, 1). Got {confint}.")
    if coef is None:
        columns = list(range(len(fit.coefficient_names)))
    else:
        items = coef if isinstance(coef, (list, tuple)) else [coef]
        columns = []
        for item in items:
            positions = [int(item)] if isinstance(item, (int, np.integer)) else \
                fit.coefficient_index(str(item))
            columns.extend(p for p in positions if p not in columns)
    non_estimable = [
        fit.coefficient_names[j] for j in columns
        if fit.contrasts is None and not fit.design.estimable[j]
    ]
    if non_estimable:
        raise EstimabilityError(
            f"{', '.join(non_estimable)} cannot be estimated from this design (it is a linear "
            "combination of other columns); test another coefficient or change the design."
        )
    if len(columns) == 1:
        table = _t_table(result, columns[0], confint)
        signif = np.abs(table["estimate"].to_numpy()) >= lfc
    else:
        if result.treat_lfc is not None:
            raise InputError("treat tests one coefficient at a time; name a single coefficient.")
        table = _f_table(result, columns)
        estimates = table.iloc[:, : len(columns)].to_numpy()
        signif = (np.abs(estimates) > lfc).any(axis=1) if lfc > 0 else np.ones(len(table), bool)
    table["adj_p_value"] = p_adjust(table["p_value"].to_numpy(), adjust)
    if "lods" in table:
        table = table[[c for c in table.columns if c != "lods"] + ["lods"]]
    if p_value < 1 or lfc > 0:
        keep = signif & (table["adj_p_value"].to_numpy() <= p_value)
        table = table.loc[keep]
    table = _sorted(table, sort_by, single=len(columns) == 1)
    if number is not None:
        table = table.iloc[:number]
    return table


def _t_table(result: ModeratedFit, j: int, confint: float) -> pd.DataFrame:
    fit = result.fit
    estimate = fit.coefficients[:, j]
    se = fit.stdev_unscaled[:, j] * np.sqrt(result.s2_post)
    df = np.where(result.df_total > 0, result.df_total, np.nan)
    margin = se * student_t_quantile((1 + confint) / 2, df)
    table = pd.DataFrame(
        {
            "estimate": estimate,
            "ci_low": estimate - margin,
            "ci_high": estimate + margin,
            "mean": fit.mean,
            "t": result.t[:, j],
            "p_value": result.p_value_of(j),
        },
        index=fit.feature_ids,
    )
    lods = result.lods_of(j)
    if lods is not None:
        table["lods"] = lods
    return table


def _f_table(result: ModeratedFit, columns: list[int]) -> pd.DataFrame:
    fit = result.fit
    f, f_p, _ = result.f_test(columns)
    table = pd.DataFrame(
        fit.coefficients[:, columns],
        index=fit.feature_ids,
        columns=[fit.coefficient_names[j] for j in columns],
    )
    table["mean"] = fit.mean
    table["F"] = f
    table["p_value"] = f_p
    return table


def _sorted(table: pd.DataFrame, sort_by: str, *, single: bool) -> pd.DataFrame:
    if sort_by == "none":
        return table
    key: NDArray[np.float64]
    if sort_by == "p":
        key = table["p_value"].to_numpy()
    elif sort_by == "t":
        key = -np.abs(table["t"].to_numpy() if single else table["F"].to_numpy())
    elif sort_by == "estimate":
        if single:
            key = -np.abs(table["estimate"].to_numpy())
        else:
            key = -np.nanmax(np.abs(table.iloc[:, : table.columns.get_loc("mean")].to_numpy()),
                             axis=1)
    elif sort_by == "B":
        if "lods" not in table:
            raise InputError("Cannot sort by B: there are no B-statistics (lods) in this table.")
        key = -table["lods"].to_numpy()
    else:  # mean
        key = -table["mean"].to_numpy()
    # Stable, NaN last (R's order(..., na.last = TRUE)); argsort puts NaN last already.
    order = np.argsort(key, kind="stable")
    return table.iloc[order]
