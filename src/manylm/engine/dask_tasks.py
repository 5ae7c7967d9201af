"""The tasks Dask workers run for :mod:`manylm.engine.dask_backend`: the chunk functions.

Each task is a thin wrapper around a function of the streaming engine (``fit_chunk``,
``moderated_chunk``, ``table_chunk``, ``t_range``...), with the chunk's state passed as a
plain dict of arrays so that it pickles cheaply between workers. A dask array input is seen as a
block source by the checks; its blocks stay lazy and reach the fit tasks as arrays.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from manylm.engine.chunk_model import (
    FIT_FIELDS,
    ChunkModel,
    fit_chunk,
    fit_fields,
    moderated_chunk,
    table_chunk,
)
from manylm.engine.prior_reduce import (
    ScalarPrior,
    TopCandidates,
    TRange,
    chunk_top,
    merge_candidates,
    merge_t_ranges,
    scalar_prior,
    t_range,
    top_candidates,
)
from manylm.engine.spill import field_path, write_field_rows
from manylm.engine.streaming import write_table_chunk
from manylm.errors import DataError
from manylm.fit.block import refuse_bad_weights
from manylm.io.feature_blocks import BlockBuffers, FeatureBlockSource, id_array

__all__ = ["LATER_B_FIELDS", "DaskArraySource", "SharedTable", "as_dask_source", "warm_up"]


def read_chunk(source: FeatureBlockSource, start: int, stop: int, samples: list[str] | None,
               either_order: bool = False) -> tuple[NDArray[np.floating], pa.Array]:
    """Read a chunk on the worker: its values and feature IDs (Arrow text). The values are
    C-contiguous, or with ``either_order`` in the layout the storage gives without an
    interleave, in this thread's block buffer (:data:`_BLOCK_BUFFERS`)."""
    block = (_BLOCK_BUFFERS.read(source, start, stop, samples) if either_order
             else source.read(start, stop, samples))
    return block.values, block.id_array


#: Each worker thread's block buffer (:class:`~manylm.io.feature_blocks.BlockBuffers`): one
#: chunk's values per thread (tens of MB), kept while the worker lives; :func:`fit_task` is
#: done with a chunk's values when it returns.
_BLOCK_BUFFERS = BlockBuffers()


def fit_task(model: ChunkModel, chunk: Any, weights: Any, start: int, stop: int,
             samples: list[str] | None, weights_samples: list[str] | None = None
             ) -> dict[str, Any]:
    """Map 1: fit rows ``start:stop``; their state is the fit's per-feature arrays and the IDs.

    ``chunk`` (and ``weights``, a weights matrix or None) are ``(values, ids)`` as a block of
    a dask array arrives, or the block source to read them from (columns ``samples``): then
    in this task, so that the values do not wait in the worker's memory between two tasks
    (the state holds none of them: the thread's buffer is free again when this returns).
    """
    if not isinstance(chunk, tuple):
        # without a weights matrix the dense fit reads either layout: no interleave
        chunk = read_chunk(chunk, start, stop, samples, either_order=weights is None)
    weights_label, weights_columns = None, weights_samples
    if weights is not None and not isinstance(weights, tuple):
        weights_label = weights.path  # for messages: the weights file
        if weights_columns is None:
            weights_columns = list(weights.sample_ids)
        weights = read_chunk(weights, start, stop, weights_samples)
    values, ids = chunk
    weight_values = None
    if weights is not None:
        weight_values, weight_ids = weights
        if not id_array(weight_ids).equals(id_array(ids)):
            raise DataError(f"The weights matrix lists other features than the data in rows "
                            f"{start + 1}-{start + len(ids)}: they must be the same, in order.")
        refuse_bad_weights(weight_values, 0, id_array(ids), weights_columns,
                           source=weights_label)
    fit = fit_chunk(model, values, ids, weight_values)
    state: dict[str, Any] = fit_fields(model, fit)
    state["ids"] = id_array(ids)
    return state


def fit_summary(state: dict[str, Any], trend: bool, with_ids: bool) -> tuple[Any, ...]:
    """What the client gathers of a fitted chunk while the others fit: its feature IDs (None
    with ``with_ids`` false), residual variances, df, and the means with a trend (the variance
    prior's inputs: 16 or 24 bytes per feature)."""
    return (state["ids"] if with_ids else None, state["residual_variance"],
            state["df_residual"], state["mean"] if trend else None)


#: The key of a posterior that holds the chunk's share of the largest |t| (posterior_task).
SHARE_OF_TOP = "share of top"


def posterior_task(prior: ScalarPrior | dict[str, Any], state: dict[str, Any],
                   model: ChunkModel | None = None, share: int = 0) -> dict[str, Any]:
    """A chunk's posterior variances and total df (and the scalar prior values): made from its
    fit with a scalar prior (the task then runs where the fit is), else ``prior`` is the
    chunk's slice of them.

    With ``share`` > 0, it also holds (under :data:`SHARE_OF_TOP`) the :class:`TRange` of the
    chunk's ``share`` largest moderated |t| of its first tested coefficient: made here, where
    the chunk is moderated anyway, for the floor of the B-statistic's candidates.
    """
    posterior: dict[str, Any] = (
        prior.posterior(state["residual_variance"], state["df_residual"])
        if isinstance(prior, ScalarPrior) else dict(prior))
    if share > 0:
        assert model is not None
        posterior[SHARE_OF_TOP] = t_range(moderated_chunk(model, state, posterior, {}), 0, share)
    return posterior


def share_of_top_part(posterior: dict[str, Any]) -> TRange:
    """The :data:`SHARE_OF_TOP` a posterior holds (a few hundred numbers: the merge moves
    these instead of the posteriors)."""
    return posterior[SHARE_OF_TOP]


def t_range_task(model: ChunkModel, state: dict[str, Any], posterior: dict[str, Any],
                 j: int, n_keep: int) -> TRange:
    """Reduce 2, first part, on one chunk (see prior_reduce.t_range)."""
    return t_range(moderated_chunk(model, state, posterior, {}), j, n_keep)


def merge_t_ranges_task(n_keep: int, *parts: TRange) -> TRange:
    """Merge step of the first tree reduction."""
    return merge_t_ranges(list(parts), n_keep)


def candidates_task(model: ChunkModel, state: dict[str, Any], posterior: dict[str, Any],
                    j: int, n_top: int, df_max: float, floor: float,
                    start: int) -> TopCandidates:
    """Reduce 2, second part: a chunk's largest |t| above the floor."""
    return top_candidates(moderated_chunk(model, state, posterior, {}), j, n_top=n_top,
                          df_max=df_max, first_row=start, floor=floor)


def merge_candidates_task(n_top: int, *parts: TopCandidates) -> TopCandidates:
    """Merge step of the second tree reduction."""
    return merge_candidates(list(parts), n_top)


#: What the B-statistics computed later need of each feature, kept beside the table's
#: columns (see dask_backend._LaterBStatistics).
LATER_B_FIELDS = ("b.stdev_unscaled", "b.df_total", "b.df_prior")
#: The name of the file that tells a worker it sees the client's directory (SharedTable).
TOKEN_FILE = "shared-with-workers"


@dataclass(frozen=True)
class SharedTable:
    """The client's spill directory, where the table tasks write their chunks themselves.

    The table's rows are most of what a run moves (~70 bytes per feature): sent to the client,
    they cost more than computing them. A worker that sees the directory (same machine, or a
    shared file system: it finds :data:`TOKEN_FILE` there with ``token`` in it) writes its
    chunk's rows into the client's field files (:class:`~manylm.engine.spill.FeatureStore`,
    file prefix ``prefix``); any other sends them.
    """

    directory: str
    token: str
    prefix: str
    value_columns: tuple[str, ...]
    sort_by: str

    def reachable(self) -> bool:
        try:
            return (Path(self.directory) / TOKEN_FILE).read_text() == self.token
        except (OSError, UnicodeDecodeError):
            return False

    def write_rows(self, name: str, start: int, values: NDArray[np.floating]) -> None:
        write_field_rows(field_path(Path(self.directory), self.prefix, name), start, values)


def table_task(model: ChunkModel, state: dict[str, Any], posterior: dict[str, Any],
               var_prior: dict[int, float], start: int = 0, n_keep: int | None = None,
               floor: float = -np.inf, shared: SharedTable | None = None, late: bool = False
               ) -> tuple[dict[str, NDArray[np.float64]] | None, Any]:
    """Map 2: a chunk's table columns (unsorted, unadjusted) and, when the B-statistics come
    later (``n_keep`` given), what they need: the chunk's ``n_keep`` largest |t| at least
    ``floor`` (:func:`chunk_top`), its unscaled standard deviations, total df and prior df.

    With ``shared`` reachable, the columns (and the sort key, and the per-feature inputs of the
    B-statistics) are written into the client's files instead: the columns are then None, and
    so are the arrays of the extra (the prior df too when it varies by feature).

    ``late`` (the client makes the table late, :mod:`manylm.engine.late_table`): the columns
    are the chunk's fit fields and p-values, and the extra only the chunk's largest |t| (the
    B-statistics are then made from the fit fields).
    """
    result = moderated_chunk(model, state, posterior, var_prior)
    if late:
        columns = {name: np.ascontiguousarray(state[name], dtype=np.float64)
                   for name in FIT_FIELDS}
        columns["p_value"] = np.asarray(result.p_value_of(0), dtype=np.float64)
    else:
        columns = table_chunk(model, result, lods=n_keep is None)
    extra: Any = None
    if late and n_keep is not None:
        extra = (chunk_top(result, start, n_keep, known_floor=floor), None, None, None)
    elif n_keep is not None:
        extra = (chunk_top(result, start, n_keep, known_floor=floor),
                 np.ascontiguousarray(state["stdev_unscaled"][:, 0], dtype=np.float64),
                 np.asarray(posterior["df_total"], dtype=np.float64), posterior["df_prior"])
    if shared is None or not shared.reachable():
        return columns, extra
    write_table_chunk(shared.write_rows, shared.value_columns, shared.sort_by, start, columns)
    if extra is not None and not late:
        top, stdev, df_total, df_prior = extra
        for name, values in zip(LATER_B_FIELDS, (stdev, df_total, df_prior), strict=True):
            if np.ndim(values):
                shared.write_rows(name, start, np.asarray(values, dtype=np.float64))
        extra = (top, None, None, None if np.ndim(df_prior) else df_prior)
    return None, extra


def warm_up() -> float:
    """Run every chunk function once on a tiny made-up chunk; returns the seconds it took.

    A fresh worker process otherwise loads numba's compiled kernels (and the readers'
    modules) inside the first real task of a run: about a second per worker, as much as
    fitting 10^6 features. Float32 and float64 data are both loaded (Parquet and Zarr
    inputs are often float32), stored by row and by column (as Parquet row groups are read),
    with a missing value (its row is refitted on its observed samples).
    """
    import time

    import pyarrow.parquet  # noqa: F401  (the readers' modules, imported by read tasks)

    from manylm.engine.run_inputs import prepare_run

    clock = time.perf_counter()
    generator = np.random.default_rng(0)
    n_rows, n_samples = 64, 8
    design = np.column_stack([np.ones(n_samples), np.repeat([0.0, 1.0], n_samples // 2)])
    ids = pa.array([f"f{i}" for i in range(n_rows)], type=pa.large_string())
    for dtype, fortran in itertools.product((np.float32, np.float64), (False, True)):
        values = generator.standard_normal((n_rows, n_samples)).astype(dtype)
        if fortran:
            values = np.asfortranarray(values)
        values[3, 2] = np.nan
        model = prepare_run(values, design, coef=1).model
        state = fit_task(model, (values, ids), None, 0, n_rows, None)
        _, variance, df, _ = fit_summary(state, False, True)
        prior = scalar_prior(model, variance, df)
        assert prior is not None
        posterior = posterior_task(prior, state, model, 4)
        t_range_task(model, state, posterior, 0, 4)
        table_task(model, state, posterior, {}, 0, 4)
        table_task(model, state, posterior, {0: 1.0})
    return time.perf_counter() - clock


class DaskArraySource:
    """A dask array seen as a block source by the checks (its blocks stay lazy)."""

    natural_block_rows = 1

    def __init__(self, array: Any, feature_ids: Sequence[str] | None,
                 sample_ids: Sequence[str] | None, label: str) -> None:
        if array.ndim != 2:
            raise DataError(f"{label} must be 2-D (features x samples); got {array.ndim} "
                            "dimensions.")
        if array.dtype.kind not in "fiub":
            raise DataError(f"{label} must be numeric; got values of type {array.dtype}.")
        self.array = array.rechunk({1: -1}) if len(array.chunks[1]) > 1 else array
        self.path = label
        self.n_features = int(array.shape[0])
        self.dtype = np.dtype(np.float32 if array.dtype == np.float32 else np.float64)
        self.sample_ids = ([str(s) for s in sample_ids] if sample_ids is not None
                           else [str(i) for i in range(array.shape[1])])
        self.positional_ids = feature_ids is None
        self.feature_ids = None if feature_ids is None else np.asarray(
            [str(f) for f in feature_ids], dtype=object)
        if self.feature_ids is not None and self.feature_ids.shape[0] != self.n_features:
            raise DataError(f"{label}: {self.feature_ids.shape[0]} feature IDs for "
                            f"{self.n_features} rows.")

    def block(self, start: int, stop: int, samples: list[str] | None) -> Any:
        """Rows ``start:stop`` (the columns of ``samples``) as a lazy (values, IDs) pair."""
        from dask import delayed

        values = self.array[start:stop]
        if samples is not None:
            position = {s: i for i, s in enumerate(self.sample_ids)}
            values = values[:, [position[s] for s in samples]]
        ids = (np.arange(start, stop).astype(str).astype(object) if self.feature_ids is None
               else self.feature_ids[start:stop])
        return delayed(with_ids, pure=True)(values, ids)  # the chunk arrives as an array

    def read(self, start: int, stop: int, samples: Sequence[str] | None = None, *,
             order: str = "C") -> Any:
        raise NotImplementedError("blocks of a dask array are read by the workers")

    def blocks(self, rows: int, samples: Sequence[str] | None = None, start: int = 0,
               stop: int | None = None, *, order: str = "C") -> Any:
        raise NotImplementedError("blocks of a dask array are read by the workers")


def with_ids(values: Any, ids: NDArray[np.object_]) -> tuple[NDArray[np.floating],
                                                            NDArray[np.object_]]:
    """A dask array chunk (computed) with its IDs, as :func:`read_chunk` returns them."""
    array = np.ascontiguousarray(values)
    if array.dtype != np.float32:
        array = array.astype(np.float64, copy=False)
    return array, ids


def as_dask_source(data: Any, feature_ids: Sequence[str] | None,
                   sample_ids: Sequence[str] | None, weights: Any) -> tuple[Any, Any]:
    """Dask arrays (data, weights matrix) seen as block sources; anything else as is."""
    import dask.array as da

    source = data
    if isinstance(data, da.Array):
        source = DaskArraySource(data, feature_ids, sample_ids, "the dask array")
    if isinstance(weights, da.Array):
        weights = DaskArraySource(weights, feature_ids,
                                  getattr(source, "sample_ids", sample_ids),
                                  "the weights dask array")
    return source, weights
