"""A spilled table sorted by p, computed in output order from the fit's own fields.

A streamed run with millions of features stores its table's columns between the passes (the
table pass writes them, the global step sorts them, the writer reads them). For the usual
table (one tested coefficient, sorted by p, a variance prior that is the same for every
feature) most of those columns need not be stored at all: the table pass stores only the
p-values, the order comes from them, and then the fit's fields (coefficient, unscaled
standard deviation, residual variance and df, mean) are put in output order in place
(:func:`~manylm.engine.streaming_table.sort_fields_in_place`), and each block of output rows
is moderated and made table rows by the thread that formats it, just before it is written.

Rows are independent given the priors (the variance prior, and the B-statistic's, estimated
over every feature in the table pass), so each block's t statistics, interval and
B-statistics are the numbers the table pass would have stored: the same computations on the
same values. What is saved is writing and reading four columns of 8 bytes per feature (t, the
interval's two ends, the B-statistic) and a pass over the stored t statistics for the
B-statistics; the sort in place permutes the five fit fields (four when the residual df is
one value) instead of the six stored columns.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from manylm.engine.chunk_model import FIT_FIELDS, moderated_chunk, table_chunk
from manylm.engine.run_inputs import PreparedRun
from manylm.engine.spill import FeatureStore, IdStore
from manylm.engine.streaming_table import (
    Block,
    adjust_and_order,
    open_table,
    output_ids,
    sortable_in_place,
    store_in_output_order,
    write_block_rows,
    write_blocks,
)
from manylm.parallel import cpu_count

__all__ = ["finish_late_table", "late_table_applies"]

#: ``posterior(start, residual_variance, df_residual)``: the posterior of rows whose fit
#: fields are given (a prior that is the same for every feature: ``start`` is not used).
Posterior = Callable[[int, NDArray[np.float64], NDArray[np.float64]], dict[str, Any]]


def late_table_applies(run: PreparedRun, results: FeatureStore, ids: IdStore | None, *,
                       scalar_prior: bool, collect: bool) -> bool:
    """Whether the table is made late: written to a file, spilled, sorted by p in place
    (:func:`~manylm.engine.streaming_table.sortable_in_place`), a t table (one tested
    coefficient) and a prior without per-feature values (no trend, not robust)."""
    return (not collect and results.spilled and run.sort_by == "p"
            and len(run.model.tested()) == 1 and scalar_prior
            and sortable_in_place(results, ids))


def finish_late_table(run: PreparedRun, summaries: FeatureStore, results: FeatureStore,
                      ids: IdStore | None, posterior: Posterior,
                      var_prior: dict[int, float], *, out: str | os.PathLike[str] | None,
                      temp_dir: Path | None, block_rows: int) -> None:
    """Adjust the p-values in ``results``, order the rows, put the fit's fields
    (``summaries``) in that order and write the table block by block (see the module).

    ``var_prior``: the B-statistic's prior of the tested coefficient (position 0), when the
    table has B-statistics.
    """
    n_rows = results.n_rows
    p = results.read_all("p_value")
    global_order = adjust_and_order(p, None, run.adjust, "p", in_output_order=True,
                                    p_is_scratch=True)
    order = global_order.order
    assert order is not None
    results.add("adj_p_value")
    n_threads = cpu_count()
    store_in_output_order(results, global_order, p, summaries, list(FIT_FIELDS), n_threads)
    del global_order, p
    whole_ids = ids.read(0, n_rows) if ids is not None and ids.spilled else None
    rows = write_block_rows(block_rows, n_threads)
    fetch = functools.partial(_late_block, run, summaries, results, ids, whole_ids, order,
                              posterior, var_prior)
    with open_table(out, special_characters=ids.special if ids is not None else set(),
                    temp_dir=temp_dir) as writer:
        write_blocks(writer, (functools.partial(fetch, start, min(n_rows, start + rows))
                              for start in range(0, n_rows, rows)), n_threads)


def _late_block(run: PreparedRun, summaries: FeatureStore, results: FeatureStore,
                ids: IdStore | None, whole_ids: pa.Array | None, order: NDArray[np.intp],
                posterior: Posterior, var_prior: dict[int, float], start: int,
                stop: int) -> Block:
    """Output rows ``start:stop``: moderated from the fit's fields in output order."""
    model = run.model
    fields = {name: summaries.read(name, start, stop) for name in FIT_FIELDS}
    result = moderated_chunk(model, fields, posterior(start, fields["residual_variance"],
                                                      fields["df_residual"]), var_prior)
    columns = table_chunk(model, result, lods="lods" in run.columns, p_value=False)
    columns["p_value"] = results.read("p_value", start, stop)
    columns["adj_p_value"] = results.read("adj_p_value", start, stop)
    return (output_ids(ids, whole_ids, order[start:stop]),
            {name: columns[name] for name in run.columns})
