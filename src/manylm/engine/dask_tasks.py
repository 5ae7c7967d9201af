"""The tasks Dask workers run for :mod:`manylm.engine.dask_backend`: the chunk functions.

Each task is a thin wrapper around a function of the streaming engine (``fit_chunk``,
``estimate_prior``, ``moderated_chunk``, ``table_chunk``...), with the chunk's state passed as a
plain dict of arrays so that it pickles cheaply between workers. A dask array input is seen as a
block source by the checks; its blocks stay lazy and reach the fit tasks as arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from manylm.engine.chunk_model import (
    ChunkModel,
    fit_chunk,
    fit_fields,
    moderated_chunk,
    table_chunk,
)
from manylm.engine.prior_reduce import (
    PriorEstimate,
    TopCandidates,
    TRange,
    chunk_top,
    estimate_prior,
    merge_candidates,
    merge_t_ranges,
    t_range,
    top_candidates,
)
from manylm.errors import DataError
from manylm.io.feature_blocks import FeatureBlockSource, id_array

__all__ = ["DaskArraySource", "as_dask_source"]


def read_task(source: FeatureBlockSource, start: int, stop: int,
              samples: list[str] | None) -> tuple[NDArray[np.floating], pa.Array]:
    """Read a chunk on the worker: its values and feature IDs (Arrow text)."""
    block = source.read(start, stop, samples)
    return block.values, block.id_array


def fit_task(model: ChunkModel, chunk: Any, weights: Any, start: int) -> dict[str, Any]:
    """Map 1: fit a chunk; its state is the fit's per-feature arrays and the IDs."""
    values, ids = chunk
    weight_values = None
    if weights is not None:
        weight_values, weight_ids = weights
        if not id_array(weight_ids).equals(id_array(ids)):
            raise DataError(f"The weights matrix lists other features than the data in rows "
                            f"{start + 1}-{start + len(ids)}: they must be the same, in order.")
    fit = fit_chunk(model, values, ids, weight_values)
    state: dict[str, Any] = fit_fields(model, fit)
    state["ids"] = id_array(ids)
    return state


def variance_parts(state: dict[str, Any]) -> tuple[NDArray[np.float64], ...]:
    """What the prior needs of a chunk: residual variances, df, means."""
    return state["residual_variance"], state["df_residual"], state["mean"]


def prior_task(model: ChunkModel, parts: list[tuple[NDArray[np.float64], ...]]
               ) -> PriorEstimate:
    """Reduce 1: the variance prior from every chunk's variances."""
    variance, df, mean = (np.concatenate([p[k] for p in parts]) for k in range(3))
    return estimate_prior(model, variance, df, mean if model.trend else None)


def posterior_task(prior: PriorEstimate, start: int, stop: int) -> dict[str, Any]:
    """A chunk's slice of the per-feature posterior (and the scalar prior values)."""
    posterior: dict[str, Any] = {name: values[start:stop].copy()
                                 for name, values in prior.per_feature().items()}
    posterior.update(prior.scalars())
    return posterior


def prior_summary(prior: PriorEstimate) -> dict[str, Any]:
    """The prior as the run record shows it."""
    return prior.summary() if prior.moderated else {}


def prior_median(prior: PriorEstimate) -> float:
    """The median prior variance (the B-statistic's scale)."""
    return prior.s2_prior_median


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


def table_task(model: ChunkModel, state: dict[str, Any], posterior: dict[str, Any],
               var_prior: dict[int, float], start: int = 0, n_keep: int | None = None,
               floor: float = -np.inf
               ) -> tuple[dict[str, NDArray[np.float64]], pa.Array, Any]:
    """Map 2: a chunk's table columns (unsorted, unadjusted), its feature IDs and, when the
    B-statistics come later (``n_keep`` given), what they need: the chunk's ``n_keep`` largest
    |t| at least ``floor`` (:func:`chunk_top`), its unscaled standard deviations, total df
    and prior df."""
    result = moderated_chunk(model, state, posterior, var_prior)
    columns = table_chunk(model, result, lods=n_keep is None)
    if n_keep is None:
        return columns, state["ids"], None
    extra = (chunk_top(result, start, n_keep, known_floor=floor),
             np.ascontiguousarray(state["stdev_unscaled"][:, 0], dtype=np.float64),
             np.asarray(posterior["df_total"], dtype=np.float64), posterior["df_prior"])
    return columns, state["ids"], extra


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

    def read(self, start: int, stop: int, samples: Sequence[str] | None = None) -> Any:
        raise NotImplementedError("blocks of a dask array are read by the workers")

    def blocks(self, rows: int, samples: Sequence[str] | None = None, start: int = 0,
               stop: int | None = None) -> Any:
        raise NotImplementedError("blocks of a dask array are read by the workers")


def with_ids(values: Any, ids: NDArray[np.object_]) -> tuple[NDArray[np.floating],
                                                            NDArray[np.object_]]:
    """A dask array chunk (computed) with its IDs, as a read task returns them."""
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
