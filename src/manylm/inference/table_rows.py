"""The rows of a one-coefficient table, written in table order in one compiled pass.

limma's ``topTable`` computes each column over all features and then reorders every column.
Here the per-feature inputs (estimate, standard error, t quantile, mean, t, p, adjusted p,
B-statistic) are read through the table's order once and the columns, with the confidence
interval computed on the way, are written straight into the table's block: one pass instead of
a pass per column for the interval and one gather per column, on every core.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from manylm.parallel import parallel_slices

__all__ = ["T_TABLE_COLUMNS", "t_table_block"]

#: The columns of the block, in order (``lods`` only when there are B-statistics).
T_TABLE_COLUMNS = ("estimate", "ci_low", "ci_high", "mean", "t", "p_value", "adj_p_value",
                   "lods")


def t_table_block(order: NDArray[np.intp], *, estimate: NDArray[np.floating],
                  standard_error: NDArray[np.floating], quantile: NDArray[np.floating],
                  mean: NDArray[np.floating], t: NDArray[np.floating],
                  p_value: NDArray[np.floating], adjusted: NDArray[np.floating] | None,
                  lods: NDArray[np.floating] | None) -> NDArray[np.float64]:
    """The table's values, shape (7 or 8 columns, len(order)), row ``i`` from feature ``order[i]``.

    ``ci_low``/``ci_high`` are ``estimate -/+ standard_error * quantile``. Inputs may be views
    with any stride, including one value broadcast (stride 0). ``adjusted`` None leaves that
    row for the caller to fill (a table in p order computes it from the sorted p row).
    """
    n_columns = 7 if lods is None else 8
    block = np.empty((n_columns, order.shape[0]))
    order = np.ascontiguousarray(order, dtype=np.intp)
    b_statistics = np.empty(0) if lods is None else lods
    adjusted_values = np.empty(0) if adjusted is None else adjusted

    def run(part: slice) -> None:
        _fill(order, estimate, standard_error, quantile, mean, t, p_value, adjusted_values,
              b_statistics, block, part.start, part.stop)

    parallel_slices(run, order.shape[0], min_items=50_000)
    return block


@numba.njit(cache=True, nogil=True)
def _fill(order, estimate, standard_error, quantile, mean, t, p_value, adjusted, lods, block,
          start, stop):
    with_lods = block.shape[0] == 8
    with_adjusted = adjusted.shape[0] > 0
    for i in range(start, stop):
        g = order[i]
        value = estimate[g]
        margin = standard_error[g] * quantile[g]
        block[0, i] = value
        block[1, i] = value - margin
        block[2, i] = value + margin
        block[3, i] = mean[g]
        block[4, i] = t[g]
        block[5, i] = p_value[g]
        if with_adjusted:
            block[6, i] = adjusted[g]
        if with_lods:
            block[7, i] = lods[g]
