"""Map 1 on one machine: blocks read and fitted by worker threads, several at a time.

When a block is a whole stored block (a Parquet row group, a Zarr chunk...), each worker reads
it (decoding is most of the work of reading, and block readers keep one open file per thread),
fits it and writes its summaries straight into the store. When the memory budget asks for
smaller blocks, the main thread reads them in order while the workers fit. Either way reading
the next blocks overlaps fitting the previous ones, with at most ``n_workers + prefetch``
blocks in flight. BLAS is held to one thread per worker so the two levels of parallelism do
not oversubscribe the cores. The main thread stores the feature IDs, in row order.

When every block's fit has one residual df for all its rows, and it is the same in every block
(a dense fit: no missing values, no weights matrix), the stored df field is made that one
value (:meth:`FeatureStore.set_constant`), so that the prior and the moderated statistics take
their one-df paths, as for a dense fit in memory.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from numpy.typing import NDArray

from manylm.engine.chunk_model import FIT_FIELDS, fit_chunk, fit_fields
from manylm.engine.inmemory import _BLAS
from manylm.engine.plan import StreamingPlan
from manylm.engine.run_control import release_freed_memory
from manylm.engine.run_inputs import PreparedRun
from manylm.engine.spill import FeatureStore, IdStore
from manylm.errors import DataError
from manylm.fit.block import refuse_bad_weights
from manylm.io.feature_blocks import (
    BlockBuffers,
    FeatureBlock,
    FeatureIds,
    read_either_order,
)
from manylm.moderate.distinct_values import broadcast_value

__all__ = ["add_fit_fields", "fit_pass"]

#: Blocks read between two releases of Arrow's unused memory.
RELEASE_EVERY = 8


def fit_pass(run: PreparedRun, plan: StreamingPlan, summaries: FeatureStore,
             ids: IdStore | None, progress: Callable[[int], None] | None) -> None:
    """Read and fit every block, several at a time; store the IDs in row order here.

    Blocks that are whole stored blocks are read by the workers, in parallel; smaller ones are
    read here, in order, so that one reader keeps the stored block it cuts them from decoded
    (a reader per worker would keep one each).
    """
    add_fit_fields(summaries, run.model.n_coefficients)
    n_rows, rows = run.n_features, plan.block_rows
    spans = [(start, min(n_rows, start + rows)) for start in range(0, n_rows, rows)]
    pending: collections.deque[Future[_Fitted]] = collections.deque()
    df_seen: set[float | None] = set()
    window = plan.n_workers + plan.prefetch
    buffers = BlockBuffers()  # each worker's block, refilled; dropped with the workers
    executor = ThreadPoolExecutor(plan.n_workers, thread_name_prefix="manylm-stream")
    try:
        with _BLAS.limit(limits=1, user_api="blas"):
            for count, (start, stop) in enumerate(spans, start=1):
                if plan.parallel_reads:
                    task = executor.submit(_read_and_fit, run, start, stop, summaries,
                                           buffers)
                else:
                    task = executor.submit(_fit, run, _read(run, start, stop), summaries)
                pending.append(task)
                while len(pending) >= window:
                    df_seen.add(_finish(pending.popleft(), ids, progress))
                if count % RELEASE_EVERY == 0:
                    release_freed_memory()
            while pending:
                df_seen.add(_finish(pending.popleft(), ids, progress))
        release_freed_memory()
        if len(df_seen) == 1 and (df := df_seen.pop()) is not None:
            summaries.set_constant("df_residual", df)
    finally:
        for future in pending:
            future.cancel()
        executor.shutdown(wait=True, cancel_futures=True)


def add_fit_fields(store: FeatureStore, n_coefficients: int) -> None:
    """The fields of :data:`FIT_FIELDS` in ``store``: a column per tested coefficient for the
    coefficients and their unscaled standard deviations, one value per feature otherwise."""
    for name in FIT_FIELDS:
        store.add(name, n_coefficients if name in ("coefficients", "stdev_unscaled") else None)


#: A fitted block: its first row, its feature IDs, and its one residual df (None: several).
_Fitted = tuple[int, FeatureIds, float | None]


def _finish(future: Future[_Fitted], ids: IdStore | None,
            progress: Callable[[int], None] | None) -> float | None:
    """Store a fitted block's IDs and report progress; its one residual df (or None)."""
    start, feature_ids, df = future.result()  # re-raises a worker's error here
    if ids is not None:
        ids.append(start, feature_ids)
    if progress is not None:
        progress(len(feature_ids))
    return df


def _read(run: PreparedRun, start: int, stop: int, buffers: BlockBuffers | None = None
          ) -> tuple[FeatureBlock, NDArray[np.floating] | None]:
    if run.weights_source is None:
        # the dense fit reads either layout: no interleave of a columnar file's samples
        block = (buffers.read(run.source, start, stop, run.samples) if buffers is not None
                 else read_either_order(run.source, start, stop, run.samples))
        return block, None
    block = run.source.read(start, stop, run.samples)
    weights = _matching_weights(run, block, run.weights_source.read(start, stop,
                                                                     run.weights_samples))
    return block, weights


def _fit(run: PreparedRun, read: tuple[FeatureBlock, NDArray[np.floating] | None],
         summaries: FeatureStore) -> _Fitted:
    block, weights = read
    fit = fit_chunk(run.model, block.values, block.ids, weights)
    fields = fit_fields(run.model, fit)
    for name, values in fields.items():
        summaries.write(name, block.start, values)
    return block.start, block.ids, broadcast_value(fields["df_residual"])


def _read_and_fit(run: PreparedRun, start: int, stop: int, summaries: FeatureStore,
                  buffers: BlockBuffers) -> _Fitted:
    """One block on a worker: read (decoding is most of reading), fit, store. The block is
    done with when this returns: the worker's next read may refill its buffer."""
    return _fit(run, _read(run, start, stop, buffers), summaries)


def _matching_weights(run: PreparedRun, block: FeatureBlock,
                      weights: FeatureBlock | None) -> NDArray[np.floating]:
    assert run.weights_source is not None
    label = f"rows {block.start + 1}-{block.stop}"
    if weights is None or weights.start != block.start or weights.stop != block.stop:
        raise DataError(f"{run.weights_source.path}: no weights for {label} of "
                        f"{run.source.path}; the weights matrix needs the same rows.")
    if not weights.id_array.equals(block.id_array) and not np.array_equal(
            weights.feature_ids, block.feature_ids):
        differ = int(np.argmax(weights.feature_ids != block.feature_ids))
        raise DataError(
            f"{run.weights_source.path}: feature {weights.feature_ids[differ]!r} where "
            f"{run.source.path} has {block.feature_ids[differ]!r} ({label}); the weights "
            "matrix must list the same features in the same order."
        )
    # here, where the weights file is known, for a message that names it
    refuse_bad_weights(weights.values, 0, block.feature_ids,
                       run.weights_samples or list(run.weights_source.sample_ids),
                       source=run.weights_source.path)
    return weights.values
