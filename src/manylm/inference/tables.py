"""Tables of results, one row per feature (limma's ``topTable``, ``topTableF``, ``topTreat``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.errors import EstimabilityError, InputError
from manylm.inference.adjust import adjust_in_order, adjust_sorted
from manylm.inference.ordering import stable_argsort
from manylm.inference.table_rows import T_TABLE_COLUMNS, t_table_block
from manylm.moderate.distinct_values import broadcast_value
from manylm.moderate.student_t import student_t_quantile
from manylm.parallel import parallel_map

if TYPE_CHECKING:
    from manylm.moderate.moderated_fit import ModeratedFit

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
    interval: tuple[NDArray[np.floating], NDArray[np.floating]] | None = None
    if len(columns) == 1:
        data, interval = _t_columns(result, columns[0], confint)
        estimates = data["estimate"][:, None]
    else:
        if result.treat_lfc is not None:
            raise InputError("treat tests one coefficient at a time; name a single coefficient.")
        data = _f_columns(result, columns)
        estimates = np.column_stack([data[fit.coefficient_names[j]] for j in columns])
    p = data["p_value"]
    by_p = stable_argsort(p)  # NaN last, as R's order(); shared with the adjustment
    # The whole t table in p order: its adjusted column is made from its sorted p column.
    in_p_order = interval is not None and sort_by == "p" and p_value >= 1 and lfc <= 0 and (
        number is None or number >= p.shape[0])
    adjusted = None if in_p_order else adjust_in_order(p, adjust, by_p)
    lods = data.pop("lods", None)  # the B-statistic stays the last column
    if adjusted is not None:
        data["adj_p_value"] = adjusted
    if lods is not None:
        data["lods"] = lods
    keep = None
    if adjusted is not None and (p_value < 1 or lfc > 0):
        if len(columns) == 1:
            large = np.abs(estimates[:, 0]) >= lfc
        else:
            large = (np.abs(estimates) > lfc).any(axis=1) if lfc > 0 else np.ones(len(p), bool)
        keep = large & (adjusted <= p_value)
    order = _order(data, sort_by, by_p, single=len(columns) == 1, keep=keep)
    if number is not None:
        order = order[:number]
    index = _take_ids(fit.feature_ids, order)
    if interval is not None:  # the t table: every column in one pass, in table order
        standard_error, quantile = interval
        block = t_table_block(order, estimate=data["estimate"], standard_error=standard_error,
                              quantile=quantile, mean=data["mean"], t=data["t"],
                              p_value=data["p_value"], adjusted=adjusted, lods=lods)
        if adjusted is None:
            block[6] = adjust_sorted(block[5], adjust)
        names = list(T_TABLE_COLUMNS[: block.shape[0]])
        return pd.DataFrame(block.T, index=index, columns=names, copy=False)
    # One 2-D block, filled column by column (the gathers on all cores): pandas keeps it as is.
    block = np.empty((len(data), order.shape[0]), dtype=np.float64)
    unsorted = list(data.values())

    def gather(row: int) -> None:
        np.take(unsorted[row], order, out=block[row])

    parallel_map(gather, range(len(unsorted)), n_jobs=None if order.shape[0] >= 100_000 else 1)
    return pd.DataFrame(block.T, index=index, columns=list(data), copy=False)


def _take_ids(ids: pd.Index, order: NDArray[np.intp]) -> pd.Index:
    """``ids[order]``; features known by position (a RangeIndex) without pandas' slow take."""
    if isinstance(ids, pd.RangeIndex) and ids.step == 1:
        return pd.Index(order + ids.start if ids.start else order, name=ids.name)
    return ids[order]


def _t_columns(result: ModeratedFit, j: int, confint: float, *, lods: bool = True,
               p_value: bool = True) -> tuple[
        dict[str, NDArray[np.floating]], tuple[NDArray[np.floating], NDArray[np.floating]]]:
    """The t table's per-feature columns, and (standard error, t quantile) for its interval.

    ``lods=False`` leaves out the B-statistic (an engine that computes it after the chunks),
    ``p_value=False`` the p-value (an engine that has it already).
    """
    fit = result.fit
    level = (1 + confint) / 2
    df_total = result.df_total
    constant = broadcast_value(df_total)
    if constant is not None:  # one df for all (a dense fit): one quantile, broadcast
        quantile = np.broadcast_to(
            student_t_quantile(level, np.array([constant if constant > 0 else np.nan]))[0],
            df_total.shape)
    else:
        quantile = student_t_quantile(level, np.where(df_total > 0, df_total, np.nan))
    data = {
        "estimate": fit.coefficients[:, j],
        "mean": fit.mean,
        "t": result.t_of(j),
    }
    if p_value:
        data["p_value"] = result.p_value_of(j)
    b_statistics = result.lods_of(j) if lods else None
    if b_statistics is not None:
        data["lods"] = b_statistics
    return data, (result.standard_error_of(j), quantile)


def _t_columns_with_interval(result: ModeratedFit, j: int, confint: float, *,
                             lods: bool = True, p_value: bool = True
                             ) -> dict[str, NDArray[np.floating]]:
    """The t table's columns, unsorted and without ``adj_p_value`` (a chunk's rows)."""
    data, (standard_error, quantile) = _t_columns(result, j, confint, lods=lods,
                                                  p_value=p_value)
    margin = standard_error * quantile
    estimate = data["estimate"]
    columns = {"estimate": estimate, "ci_low": estimate - margin, "ci_high": estimate + margin}
    columns.update(data)
    return columns


def _f_columns(result: ModeratedFit, columns: list[int]) -> dict[str, NDArray[np.floating]]:
    fit = result.fit
    f, f_p, _ = result.f_test(columns)
    data = {fit.coefficient_names[j]: fit.coefficients[:, j] for j in columns}
    data["mean"] = fit.mean
    data["F"] = f
    data["p_value"] = f_p
    return data


def _order(data: dict[str, NDArray[np.floating]], sort_by: str, by_p: NDArray[np.intp], *,
           single: bool, keep: NDArray[np.bool_] | None) -> NDArray[np.intp]:
    """Row order of the table: stable, NaN last (R's ``order(..., na.last = TRUE)``)."""
    key: NDArray[np.floating] | None = None
    if sort_by == "p":
        order = by_p
    elif sort_by == "none":
        order = np.arange(len(by_p))
    else:
        if sort_by == "t":
            key = -np.abs(data["t"] if single else data["F"])
        elif sort_by == "estimate":
            if single:
                key = -np.abs(data["estimate"])
            else:
                names = list(data)[: list(data).index("mean")]
                stacked = np.abs(np.column_stack([data[n] for n in names]))
                missing = np.isnan(stacked)
                # the largest tested |estimate|; a row with none (all NaN) sorts last
                key = -np.where(missing, -np.inf, stacked).max(axis=1)
                key[missing.all(axis=1)] = np.nan
        elif sort_by == "B":
            if "lods" not in data:
                raise InputError("Cannot sort by B: there are no B-statistics (lods) here.")
            key = -data["lods"]
        else:  # mean
            key = -data["mean"]
        order = stable_argsort(key)
    if keep is not None:
        order = order[keep[order]]
    return order
