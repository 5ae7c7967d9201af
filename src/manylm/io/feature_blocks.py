"""The contract between streaming readers and the streaming engine: blocks of feature rows.

A :class:`FeatureBlockSource` is a features x samples matrix on disk that can be read a block of
rows at a time without loading the rest. Readers (Parquet row groups, Zarr, HDF5, backed AnnData)
implement it; the streaming engine and the Dask backend consume it. Sources are cheap to pickle
(they hold a path and metadata, never data), so Dask workers can reopen them.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Protocol, TypeAlias, runtime_checkable

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

__all__ = ["BlockBuffers", "FeatureBlock", "FeatureBlockSource", "FeatureIds", "id_array",
           "id_text", "read_either_order"]

#: A block's feature IDs as its reader has them: Python strings, or Arrow text (Parquet).
FeatureIds: TypeAlias = NDArray[np.object_] | pa.Array


@dataclass(frozen=True, init=False)
class FeatureBlock:
    """Rows ``start:start + len(ids)`` of a source.

    Attributes
    ----------
    start : int
        Index of the first row in the whole matrix.
    ids : numpy.ndarray of str (object dtype) or pyarrow string array, shape (n_rows,)
        The feature IDs as the reader has them: a Parquet reader keeps Arrow's text, so that a
        streamed run stores them without making a Python string per feature.
    values : numpy.ndarray of shape (n_rows, n_selected_samples)
        float32 or float64 (the source's dtype); missing values are NaN. C-contiguous; read
        with ``order="A"``, stored by column where the storage keeps sample columns: Fortran
        order (a file's), or unit stride along the rows (rows of an in-memory matrix).
    """

    start: int
    ids: FeatureIds
    values: NDArray[np.floating]

    def __init__(self, start: int, ids: FeatureIds | None = None,
                 values: NDArray[np.floating] | None = None, *,
                 feature_ids: FeatureIds | None = None) -> None:
        """``FeatureBlock(start, ids, values)``; ``feature_ids=`` is accepted for ``ids`` (the
        field's earlier name)."""
        if (ids is None) == (feature_ids is None) or values is None:
            raise TypeError("FeatureBlock needs start, values and one of ids / feature_ids")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "ids", ids if ids is not None else feature_ids)
        object.__setattr__(self, "values", values)

    @property
    def stop(self) -> int:
        return self.start + len(self.ids)

    @cached_property
    def feature_ids(self) -> NDArray[np.object_]:
        """The IDs as an object array of ``str`` (made on first use from Arrow text)."""
        if isinstance(self.ids, (pa.Array, pa.ChunkedArray)):
            return np.asarray(self.ids.to_numpy(zero_copy_only=False), dtype=object)
        return self.ids

    @property
    def id_array(self) -> pa.Array:
        """The IDs as an Arrow ``large_string`` array (no copy when the reader's are)."""
        return id_array(self.ids)


def id_array(ids: FeatureIds | Sequence[str]) -> pa.Array:
    """Feature IDs as one Arrow ``large_string`` array."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    array = ids if isinstance(ids, pa.Array) else pa.array(ids, type=pa.large_string())
    return array if array.type == pa.large_string() else array.cast(pa.large_string())


def id_text(ids: FeatureIds, position: int) -> str:
    """The ID at ``position`` as ``str``, for messages."""
    value = ids[position]
    return str(value.as_py() if isinstance(value, pa.Scalar) else value)


@runtime_checkable
class FeatureBlockSource(Protocol):
    """A features x samples matrix read a block of rows at a time.

    Attributes
    ----------
    path : str
        The file or store, for messages (``"... in rows 2,000,000-2,099,999 of data.parquet"``).
    sample_ids : list of str
        All sample IDs in file order.
    n_features : int
    dtype : numpy.dtype
        float32 or float64: what :meth:`read` returns.
    natural_block_rows : int
        The storage's own block size (Parquet row group, Zarr/HDF5 chunk rows): reads aligned to
        it touch each stored block once.
    """

    path: str
    sample_ids: list[str]
    n_features: int
    dtype: np.dtype
    natural_block_rows: int

    def read(self, start: int, stop: int, samples: Sequence[str] | None = None, *,
             order: str = "C") -> FeatureBlock:
        """Rows ``start:stop``, the columns of ``samples`` in that order (all when None).

        ``order="C"`` gives C-contiguous values; ``"A"`` C or Fortran order, whichever the
        storage gives without interleaving sample columns. Raises
        :class:`manylm.errors.InputError` naming the file and the row range when the stored
        block is corrupt or truncated, or a sample is not in the file.
        """
        ...

    def blocks(
        self, rows: int, samples: Sequence[str] | None = None,
        start: int = 0, stop: int | None = None, *, order: str = "C",
    ) -> Iterator[FeatureBlock]:
        """Consecutive blocks of (about) ``rows`` rows covering ``start:stop``, in order."""
        ...


def read_either_order(source: FeatureBlockSource, start: int, stop: int,
                      samples: Sequence[str] | None,
                      buffer: NDArray[np.floating] | None = None) -> FeatureBlock:
    """``source.read(start, stop, samples, order="A")``: the block in whichever layout the
    storage gives without interleaving sample columns, for a consumer that reads either;
    ``buffer`` is passed on to the readers that take one (see
    :meth:`manylm.io.block_sources.BlockSourceBase.read`).

    A source whose ``read`` takes no ``order`` (written against the contract before it had
    one) is read as it reads, C-contiguous.
    """
    read = source.read
    takes = _read_arguments(getattr(read, "__func__", read))
    if "order" not in takes:
        return source.read(start, stop, samples)
    if buffer is not None and "buffer" in takes:
        return source.read(start, stop, samples, order="A", buffer=buffer)  # type: ignore[call-arg]
    return source.read(start, stop, samples, order="A")


class BlockBuffers(threading.local):
    """One block buffer per thread, for reads with :func:`read_either_order` by a thread that
    is done with a block before it reads the next.

    The latest block a reader made by copying sample columns into a new Fortran-ordered array
    (a Parquet row group) is the thread's buffer, and the reader refills it for the thread's
    later reads of the same shape: a new block of fresh memory costs more in page faults than
    the copies into it. A block's values are valid until the thread's next read.
    """

    values: NDArray[np.floating] | None = None

    def read(self, source: FeatureBlockSource, start: int, stop: int,
             samples: Sequence[str] | None) -> FeatureBlock:
        block = read_either_order(source, start, stop, samples, self.values)
        values = block.values
        if values is not self.values and values.flags.owndata and (
                values.flags.f_contiguous and values.flags.writeable
                and not values.flags.c_contiguous):
            self.values = values  # another shape (a last block, another run): the latest
        return block


@lru_cache(maxsize=256)
def _read_arguments(read: Callable[..., Any]) -> frozenset[str]:
    try:
        return frozenset(inspect.signature(read).parameters)
    except (TypeError, ValueError):
        return frozenset()
