"""Run the map step over an in-memory matrix, on every core.

Without a weights matrix, every row is first fitted by the dense kernel in one compiled read of
the whole matrix (split over the cores), which writes the results in place; the rows it flags
(a missing value, an inexact residual sum of squares) are then refitted. Otherwise the matrix is
cut into row blocks of a few megabytes that run on a thread pool (NumPy releases the GIL), with
BLAS held to one thread per worker so the two levels of parallelism do not oversubscribe the
cores, and each worker writes its block's results straight into the output arrays.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import ThreadpoolController

from manylm.fit.block import BlockFitter
from manylm.fit.blocked import BlockedFitter
from manylm.fit.chunk import ChunkFit
from manylm.fit.projection_kernel import INEXACT, NOT_FINITE, DenseRowFit, fit_rows
from manylm.parallel import cpu_count, parallel_map

__all__ = ["default_block_rows", "fit_in_blocks", "row_blocks"]

#: Target size of one block of the data matrix: large enough that per-block overheads vanish,
#: small enough that blocks spread over the cores and temporaries stay modest.
BLOCK_BYTES = 4 * 1024 * 1024

_BLAS = ThreadpoolController()  # inspecting the loaded libraries is slow: do it once


def default_block_rows(n_samples: int, itemsize: int = 8) -> int:
    """Rows per block so that a block is about :data:`BLOCK_BYTES`."""
    return max(64, BLOCK_BYTES // max(1, n_samples * itemsize))


def row_blocks(n_rows: int, block_rows: int) -> Iterator[slice]:
    """Consecutive row slices covering ``n_rows``."""
    for start in range(0, n_rows, block_rows):
        yield slice(start, min(n_rows, start + block_rows))


def fit_in_blocks(
    fitter: BlockFitter | BlockedFitter,
    y: NDArray[np.floating],
    weights: NDArray[np.floating] | None = None,
    *,
    block_rows: int | None = None,
    n_jobs: int | None = None,
    keep_residuals: bool = False,
    feature_ids: object = None,
    sample_ids: object = None,
    progress: Callable[[int], None] | None = None,
) -> ChunkFit:
    """Fit every row of ``y`` block by block; the result does not depend on ``block_rows``.

    Without a weights matrix (and with the constant in the design) every row is first fitted
    by one compiled read of the whole matrix on every core (:func:`_fit_dense_first`); only the
    rows with a missing value are then refitted, in blocks.
    """
    n_rows, n_samples = y.shape
    block_rows = block_rows or default_block_rows(n_samples)
    blocks = list(row_blocks(n_rows, block_rows))
    n_jobs = min(n_jobs or cpu_count(), len(blocks)) or 1
    row_fit = fitter.row_fit if isinstance(fitter, BlockFitter) else None
    if (isinstance(fitter, BlockFitter) and row_fit is not None and weights is None
            and not keep_residuals and y.dtype in (np.float32, np.float64)
            and y.itemsize in y.strides):
        return _fit_dense_first(fitter, row_fit, y, block_rows=block_rows, n_jobs=n_jobs,
                                feature_ids=feature_ids, sample_ids=sample_ids,
                                progress=progress)

    if len(blocks) == 1:
        return fitter(y, weights, keep_residuals=keep_residuals, feature_ids=feature_ids,
                      sample_ids=sample_ids)
    # Each worker writes its block's results straight into the output (no final concatenation).
    out = _Output(_allocate(n_rows, n_samples, fitter.design.shape[1], fitter.dtype,
                            keep_residuals))

    def run(block: slice) -> None:
        result = fitter(
            y[block],
            None if weights is None else weights[block],
            first_row=block.start,
            keep_residuals=keep_residuals,
            feature_ids=feature_ids,
            sample_ids=sample_ids,
        )
        out.assign(block, result)
        if progress is not None:
            progress(block.stop - block.start)

    with _BLAS.limit(limits=1, user_api="blas"):
        parallel_map(run, blocks, n_jobs=n_jobs)
    return out.finish()


def _fit_dense_first(fitter: BlockFitter, row_fit: DenseRowFit, y: NDArray[np.floating], *,
                     block_rows: int, n_jobs: int, feature_ids: object, sample_ids: object,
                     progress: Callable[[int], None] | None) -> ChunkFit:
    """Every row by the one-read dense fit, written straight into the results; then the rows
    it flags: inexact ones refitted from their residuals, incomplete ones (a missing or
    infinite value) on their observed samples, in blocks on every core."""
    n_rows = y.shape[0]
    n_coef = fitter.design.shape[1]
    coefficients = np.empty((n_rows, n_coef))
    if not fitter.estimable.all():
        coefficients[:, ~fitter.estimable] = np.nan
    residual_variance, mean = np.empty(n_rows), np.empty(n_rows)
    status = fit_rows(y, row_fit, coefficients, residual_variance, mean, parallel=n_jobs > 1)
    stdev = fitter.dense_stdev_unscaled
    result = ChunkFit(
        coefficients=coefficients,
        stdev_unscaled=np.broadcast_to(stdev, (n_rows, n_coef)),
        residual_variance=residual_variance,
        df_residual=np.broadcast_to(np.float64(y.shape[1] - row_fit.rank), (n_rows,)),
        mean=mean,
    )
    inexact = np.flatnonzero(status == INEXACT)
    if inexact.size:
        result.assign(inexact, fitter(y[inexact]))  # the dense solver forms their residuals
    incomplete = np.flatnonzero(status == NOT_FINITE)
    if progress is not None:
        progress(n_rows - incomplete.size)
    if incomplete.size:
        # their df and unscaled stdev differ: full arrays, filled block by block on the cores
        result.stdev_unscaled = np.array(result.stdev_unscaled)
        result.df_residual = np.array(result.df_residual)

        def refit(rows: NDArray[np.intp]) -> None:
            result.assign(rows, fitter.fit_incomplete(y, rows, feature_ids=feature_ids,
                                                      sample_ids=sample_ids))
            if progress is not None:
                progress(rows.shape[0])

        n_parts = min(incomplete.size, max(n_jobs, -(-incomplete.size // block_rows)))
        parts = np.array_split(incomplete, n_parts)  # balanced over the workers
        with _BLAS.limit(limits=1, user_api="blas"):
            parallel_map(refit, parts, n_jobs=n_jobs)
    return result


class _Output:
    """The fit of every row, filled block by block from the worker threads.

    ``stdev_unscaled`` and ``df_residual`` depend only on the design for complete rows: while
    every block gives the same row for them (broadcast), they are kept as that one row and
    returned broadcast; the full array is made (under a lock, once) only when a block differs.
    That saves writing, and first touching, 8 (p + 1) bytes per feature.
    """

    SHARED = ("stdev_unscaled", "df_residual")

    def __init__(self, arrays: ChunkFit) -> None:
        self.arrays = arrays
        self.rows: dict[str, NDArray[np.floating] | None] = dict.fromkeys(self.SHARED)
        self.full: dict[str, NDArray[np.floating] | None] = dict.fromkeys(self.SHARED)
        self.lock = threading.Lock()

    def assign(self, block: slice, result: ChunkFit) -> None:
        shared = {name: getattr(result, name) for name in self.SHARED}
        for name in self.SHARED:
            setattr(result, name, None)  # the rest is copied as usual
        self.arrays.assign(block, result)
        for name, value in shared.items():
            setattr(result, name, value)
            full = self._target(name, value)
            if full is not None:
                full[block] = value

    def _target(self, name: str, value: NDArray[np.floating]) -> NDArray[np.floating] | None:
        """None when ``value`` is the shared row; else the full array (made on first need)."""
        broadcast = value.ndim >= 1 and value.shape[0] > 0 and value.strides[0] == 0
        with self.lock:
            if self.full[name] is None:
                row = self.rows[name]
                if broadcast and row is None:
                    self.rows[name] = np.array(value[0])
                    return None
                if broadcast and row is not None and np.array_equal(row, value[0],
                                                                    equal_nan=True):
                    return None
                full = np.empty((self.arrays.n_features, *value.shape[1:]), dtype=value.dtype)
                if row is not None:
                    full[...] = row
                self.full[name] = full
            return self.full[name]

    def finish(self) -> ChunkFit:
        for name in self.SHARED:
            full, row = self.full[name], self.rows[name]
            if full is not None:
                setattr(self.arrays, name, full)
            elif row is not None:
                setattr(self.arrays, name, np.broadcast_to(row, (self.arrays.n_features,
                                                                *row.shape)))
        return self.arrays


def _allocate(n_rows: int, n_samples: int, n_coef: int, dtype: type,
              keep_residuals: bool) -> ChunkFit:
    def empty(*shape: int) -> NDArray[np.floating]:
        return np.empty(shape, dtype=dtype)

    return ChunkFit(
        coefficients=empty(n_rows, n_coef),
        # placeholders (no memory): _Output makes these when it knows their form
        stdev_unscaled=np.broadcast_to(np.array(np.nan, dtype=dtype), (n_rows, n_coef)),
        residual_variance=empty(n_rows),
        df_residual=np.broadcast_to(np.nan, (n_rows,)),
        mean=empty(n_rows),
        residuals=empty(n_rows, n_samples) if keep_residuals else None,
        fitted=empty(n_rows, n_samples) if keep_residuals else None,
    )
