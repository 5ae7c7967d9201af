"""Fast Student t tail probabilities and quantiles for many features at once."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import special

from manylm.moderate.distinct_values import broadcast_value, distinct_values
from manylm.moderate.student_t_table import TailTable, evaluate_grouped, tail_table
from manylm.parallel import parallel_slices

__all__ = ["student_t_quantile", "student_t_sf"]

#: Below this many values, stdtr runs on one core.
_PARALLEL_MIN = 10_000
#: From this many values on one df, tabulating the tail (~0.2 ms) pays for itself.
_TABLE_MIN = 4_096
#: Several df (missing values: a few residual df): a table for each df with this many values,
#: when there are at most _MAX_GROUPS distinct df.
_GROUP_MIN = 2_048
_MAX_GROUPS = 16


def student_t_sf(t: NDArray[np.floating], df: NDArray[np.floating] | float) -> NDArray[np.floating]:
    """Upper tail P(T > t) on ``df`` degrees of freedom (infinite df: the normal).

    Long vectors on one df (the usual moderated table) use the tabulated tail of
    :mod:`manylm.moderate.student_t_table` (relative error below 1e-12); otherwise
    ``scipy.special.stdtr`` directly (no distribution-object overhead). Either is split over
    the cores for long vectors (both release the GIL).
    """
    t = np.asarray(t, dtype=np.float64)
    df_array = np.asarray(df, dtype=np.float64)
    if t.size >= _TABLE_MIN:
        table = _common_table(df_array)
        if table is not None:
            return _tabulated(table, t)
        if df_array.shape == t.shape:
            grouped = _grouped(t, df_array)
            if grouped is not None:
                return grouped
    flat_t, flat_df = t.ravel(), np.broadcast_to(df_array, t.shape).ravel()
    out = np.empty(t.size)

    def run(part: slice) -> None:
        out[part] = _sf(flat_t[part], flat_df[part])

    parallel_slices(run, t.size, min_items=_PARALLEL_MIN // 2)
    return out.reshape(t.shape)


def _common_table(df: NDArray[np.float64]) -> TailTable | None:
    """The tail table of the one df every value shares, if they share one."""
    if df.ndim == 0:
        return tail_table(float(df))
    constant = broadcast_value(df)
    if constant is not None:
        return tail_table(constant) if np.isfinite(constant) else None
    first = df.flat[0]
    if not np.isfinite(first) or df.min() != first or df.max() != first:
        return None
    return tail_table(float(first))


def _tabulated(table: TailTable, t: NDArray[np.floating]) -> NDArray[np.float64]:
    flat = np.ascontiguousarray(t).ravel()
    out = np.empty(flat.size)

    def run(part: slice) -> None:
        table.upper_tail(flat[part], out[part])

    parallel_slices(run, flat.size)
    return out.reshape(t.shape)


def _grouped(t: NDArray[np.floating], df: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """Tails on a few distinct df: one table per frequent df, ``stdtr`` for the rest."""
    flat_df = np.ascontiguousarray(df).ravel()
    values, labels, counts = distinct_values(flat_df, _MAX_GROUPS)
    tables = [tail_table(float(v)) if c >= _GROUP_MIN else None
              for v, c in zip(values, counts, strict=True)]
    present = [table for table in tables if table is not None]
    if not present:
        return None
    empty = np.zeros_like(present[0].coefficients)
    coefficients = np.stack([empty if tb is None else tb.coefficients for tb in tables])
    central = np.stack([empty if tb is None else tb.central for tb in tables])
    widths = np.array([0.0 if tb is None else tb.width for tb in tables])
    central_widths = np.array([1.0 if tb is None else tb.central_width for tb in tables])
    dfs = np.array([1.0 if tb is None else tb.df for tb in tables])
    flat_t = np.ascontiguousarray(t).ravel()
    out = np.empty(flat_t.size)

    def run(part: slice) -> None:
        evaluate_grouped(flat_t[part], labels[part], dfs, widths, coefficients, central_widths,
                         central, out[part])

    parallel_slices(run, flat_t.size)
    rest = np.flatnonzero(np.isnan(out) & ~np.isnan(flat_t))
    if rest.size:
        out[rest] = _sf(flat_t[rest], flat_df[rest])
    return out.reshape(t.shape)


def _sf(t: NDArray[np.floating], df: NDArray[np.floating]) -> NDArray[np.floating]:
    infinite = np.isinf(df)
    if infinite.any():
        return np.where(infinite, special.ndtr(-t), special.stdtr(np.where(infinite, 1.0, df), -t))
    return np.asarray(special.stdtr(df, -t))


def student_t_quantile(p: float, df: NDArray[np.floating]) -> NDArray[np.floating]:
    """The ``p`` quantile for each df, computed once per distinct df value."""
    dfs: NDArray[np.float64] = np.asarray(df, dtype=np.float64)
    if dfs.size > 1 and np.all(dfs == dfs.flat[0]):  # the usual case: one df for every feature
        return np.full(dfs.shape, student_t_quantile(p, dfs.flat[:1])[0])
    if dfs.ndim == 1:  # a few distinct df (missing values): one scan, no sort
        unique, labels, _ = distinct_values(dfs, _MAX_GROUPS)
        if unique.size:
            return _quantile_of_distinct(p, unique)[labels]
    unique, inverse = np.unique(dfs, return_inverse=True)
    return _quantile_of_distinct(p, unique)[inverse.reshape(dfs.shape)]


def _quantile_of_distinct(p: float, unique: NDArray[np.float64]) -> NDArray[np.float64]:
    """The ``p`` quantile for each of a few df (NaN for NaN df, the normal's for infinite)."""
    finite = np.isfinite(unique)
    values = np.full(unique.shape, np.nan)
    values[finite] = special.stdtrit(unique[finite], p)
    values[np.isposinf(unique)] = special.ndtri(p)
    return values
