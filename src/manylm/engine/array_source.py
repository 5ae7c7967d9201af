"""A :class:`~manylm.io.feature_blocks.FeatureBlockSource` over a matrix already in memory.

The streaming engine and the Dask backend read features a block of rows at a time from a
source. Files have their own readers (Parquet row groups, Zarr, HDF5...); this one wraps a NumPy
array or a DataFrame, so that a matrix in memory goes through exactly the same code, and the
engine's tests need no files.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.errors import DataError, InputError
from manylm.io.block_sources import checked_order
from manylm.io.feature_blocks import FeatureBlock

__all__ = ["ArraySource"]


class ArraySource:
    """Blocks of rows of an in-memory features x samples matrix.

    Parameters
    ----------
    values : array of shape (n_features, n_samples) or DataFrame
        Numbers, NaN for missing. A DataFrame gives the feature IDs (index) and sample IDs
        (columns). Integer or boolean values are read as float64; float32 stays float32.
    feature_ids, sample_ids : sequence of str, optional
        IDs for a bare array. Without feature IDs the features are known by position
        (``"0"``, ``"1"``... in blocks; :attr:`positional_ids` is True).
    path : str
        How to name the matrix in messages.

    Notes
    -----
    The array is kept by reference, not copied. Pickling a source pickles the array (a file
    reader pickles only its path), so on Dask it is sent to the workers once, as one graph
    object.
    """

    natural_block_rows = 1

    def __init__(self, values: Any, *,
                 feature_ids: Sequence[str] | NDArray[np.object_] | None = None,
                 sample_ids: Sequence[str] | None = None, path: str = "the data matrix") -> None:
        if isinstance(values, pd.DataFrame):
            if feature_ids is None:
                feature_ids = np.asarray(values.index.astype(str), dtype=object)
            sample_ids = [str(s) for s in values.columns] if sample_ids is None else sample_ids
            values = values.to_numpy()
        matrix = np.asarray(values)
        if matrix.ndim != 2:
            raise DataError(f"{path}: the data must be 2-D (features x samples); got "
                            f"{matrix.ndim} dimensions.")
        if matrix.dtype.kind not in "fiub":
            raise DataError(f"{path}: the data must be numeric; got values of type "
                            f"{matrix.dtype}.")
        if matrix.dtype != np.float32:
            matrix = matrix.astype(np.float64, copy=False)
        self.values: NDArray[np.floating] = matrix
        self.path = path
        self.n_features = int(matrix.shape[0])
        self.dtype = matrix.dtype
        self.positional_ids = feature_ids is None
        self._feature_ids: NDArray[np.object_] | None = None
        if feature_ids is not None:
            ids = np.asarray(feature_ids, dtype=object)
            if ids.size and not isinstance(ids[0], str):
                ids = ids.astype(str).astype(object)
            if ids.shape[0] != self.n_features:
                raise DataError(f"{path}: {ids.shape[0]} feature IDs for {self.n_features} rows.")
            self._feature_ids = ids
        if sample_ids is None:
            sample_ids = [str(i) for i in range(matrix.shape[1])]
        self.sample_ids = [str(s) for s in sample_ids]
        if len(self.sample_ids) != matrix.shape[1]:
            raise DataError(f"{path}: {len(self.sample_ids)} sample IDs for "
                            f"{matrix.shape[1]} columns.")
        self._column = {s: i for i, s in enumerate(self.sample_ids)}

    def __repr__(self) -> str:
        return (f"ArraySource({self.n_features} features x {len(self.sample_ids)} samples, "
                f"{self.dtype})")

    def _columns(self, samples: Sequence[str] | None) -> NDArray[np.intp] | None:
        if samples is None:
            return None
        missing = [s for s in samples if s not in self._column]
        if missing:
            raise InputError(f"{self.path}: no column for sample(s) {', '.join(missing[:10])}.")
        columns = np.fromiter((self._column[s] for s in samples), dtype=np.intp,
                              count=len(samples))
        if np.array_equal(columns, np.arange(len(self.sample_ids))):
            return None
        return columns

    def read(self, start: int, stop: int, samples: Sequence[str] | None = None, *,
             order: str = "C") -> FeatureBlock:
        """Rows ``start:stop``, the columns of ``samples`` in that order.

        C-contiguous; with ``order="A"`` a matrix stored by column (a pandas frame's values)
        gives its rows as they are, unit stride along the rows, without a copy.
        """
        if not 0 <= start <= stop <= self.n_features:
            raise InputError(f"{self.path}: rows {start}-{stop} are outside 0-{self.n_features}.")
        checked_order(order)
        columns = self._columns(samples)
        block = self.values[start:stop]
        if columns is not None:
            block = block[:, columns]
        by_column = order == "A" and block.strides[0] == block.itemsize
        values = block if by_column else np.ascontiguousarray(block)
        if self._feature_ids is not None:
            ids = self._feature_ids[start:stop]
        else:
            ids = np.arange(start, stop).astype(str).astype(object)
        return FeatureBlock(start=start, ids=ids, values=values)

    def blocks(self, rows: int, samples: Sequence[str] | None = None, start: int = 0,
               stop: int | None = None, *, order: str = "C") -> Iterator[FeatureBlock]:
        """Consecutive blocks of ``rows`` rows covering ``start:stop``, in order."""
        stop = self.n_features if stop is None else stop
        rows = max(1, int(rows))
        for first in range(start, stop, rows):
            yield self.read(first, min(stop, first + rows), samples, order=order)
