"""Opening a features x samples matrix on disk to be read a block of rows at a time.

:func:`open_feature_blocks` tells the format from the name and returns a
:class:`~manylm.io.feature_blocks.FeatureBlockSource`: Parquet (row groups), Zarr and HDF5
(row chunks of the layout ``manylm convert`` writes as Zarr) or backed AnnData. The readers share
:class:`BlockSourceBase`: range and sample checks, refusal of infinite values naming the rows,
an error naming the stored block when it is corrupt, and cheap pickling (path and metadata only;
each process or thread reopens the file on its first read), so Dask workers can use them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from manylm.errors import DataError, InputError
from manylm.io._ids import duplicated_ids, quote_ids
from manylm.io.feature_blocks import (
    FeatureBlock,
    FeatureBlockSource,
    FeatureIds,
    id_array,
    id_text,
)
from manylm.io.formats import not_a_file_error

__all__ = ["ORDERS", "STREAM_SUFFIXES", "BlockSourceBase", "checked_order",
           "open_feature_blocks", "rows_label"]

#: Values of a stored block: rows x selected samples (any layout) or a list of sample columns.
StoredValues = NDArray[np.floating] | list[NDArray[np.floating]]

#: Memory layouts :meth:`BlockSourceBase.read` gives: ``"C"``, rows x samples C-contiguous;
#: ``"A"``, whichever of C or Fortran order the storage gives without interleaving (a columnar
#: file's sample columns copied side by side, a transposed store as it is).
ORDERS = ("C", "A")

#: Suffixes :func:`open_feature_blocks` reads (``.zarr`` is a directory).
STREAM_SUFFIXES: tuple[str, ...] = (".parquet", ".zarr", ".h5", ".hdf5", ".h5ad")
_TEXT_SUFFIXES = (".tsv", ".txt", ".tab", ".csv")

#: Target bytes of a stored block when the storage has no block size of its own.
DEFAULT_BLOCK_BYTES = 32 * 1024 * 1024
_CACHED_BLOCKS = 2  # decoded stored blocks kept per thread
_TRANSPOSE_ROWS = 4096  # rows per step when interleaving columns: the step stays in cache


def rows_label(start: int, stop: int) -> str:
    """``"rows 2,000,000-2,099,999"``: a 0-based, inclusive row range for messages."""
    if stop - start == 1:
        return f"row {start:,}"
    return f"rows {start:,}-{stop - 1:,}"


def open_feature_blocks(path: str | os.PathLike[str]) -> FeatureBlockSource:
    """Open a features x samples matrix to read it a block of rows at a time.

    Nothing but the metadata (sample IDs, number of rows, block layout) is read here.

    Parameters
    ----------
    path : str or path-like
        ``.parquet``: feature IDs in the first column (or the stored pandas index), one numeric
        column per sample, as :func:`manylm.io.read_matrix` reads it. ``.zarr`` (a directory)
        or ``.h5`` / ``.hdf5``: the layout ``manylm convert`` writes: a 2-D array ``values``
        (features x samples, float32 or float64) and 1-D string arrays ``feature_ids`` and
        ``sample_ids``. ``.h5ad``: AnnData, opened backed (samples x features on disk; blocks are
        transposed).

    Returns
    -------
    FeatureBlockSource
        A :class:`~manylm.io.parquet_blocks.ParquetBlockSource`,
        :class:`~manylm.io.zarr_blocks.ZarrBlockSource`,
        :class:`~manylm.io.hdf5_blocks.HDF5BlockSource` or
        :class:`~manylm.io.anndata_blocks.AnnDataBlockSource`.

    Raises
    ------
    InputError
        If the path does not exist, its suffix is not one of :data:`STREAM_SUFFIXES` (a text
        matrix must be converted first with ``manylm convert``), or the file does not have the
        expected layout.
    """
    label = os.fspath(path)
    p = Path(path)
    name = p.name.lower().rstrip("/")
    base = name[:-3] if name.endswith(".gz") else name
    if base.endswith(_TEXT_SUFFIXES):
        raise InputError(
            f"{label}: a text matrix cannot be read a block of rows at a time; convert it once "
            f"with 'manylm convert {label} {_stem(p)}.parquet' (or .zarr) and stream that file, "
            f"or read it whole with manylm.io.read_matrix"
        )
    suffix = next((s for s in STREAM_SUFFIXES if name.endswith(s)), None)
    if suffix is None:
        shown = f"suffix {p.suffix!r}" if p.suffix else "no suffix"
        raise InputError(
            f"{label}: cannot tell the format from the name ({shown}); streamed matrices must "
            f"be one of {', '.join(STREAM_SUFFIXES)} (.zarr is a directory). Rename the file or "
            f"convert it with manylm convert."
        )
    if not p.exists():
        raise InputError(
            f"{label}: not found (looked in {p.absolute().parent}); check the path"
        )
    if suffix == ".zarr":
        if not p.is_dir():
            raise InputError(f"{label}: a .zarr store is a directory, but this is a file")
        from manylm.io.zarr_blocks import ZarrBlockSource

        return ZarrBlockSource(p)
    if not p.is_file():
        raise not_a_file_error(p, label, f"a {suffix} file")
    if suffix == ".parquet":
        from manylm.io.parquet_blocks import ParquetBlockSource

        return ParquetBlockSource(p)
    if suffix == ".h5ad":
        from manylm.io.anndata_blocks import AnnDataBlockSource

        return AnnDataBlockSource(p)
    from manylm.io.hdf5_blocks import HDF5BlockSource

    return HDF5BlockSource(p)


def _stem(p: Path) -> str:
    name = p.name
    for suffix in (".gz", *_TEXT_SUFFIXES):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return os.fspath(p.with_name(name))


class BlockSourceBase:
    """What every block reader shares; a subclass reads the stored rows.

    Subclasses set :attr:`path`, :attr:`sample_ids`, :attr:`n_features`, :attr:`dtype` and
    :attr:`natural_block_rows` in ``__init__`` and implement either :meth:`_load_block` (one
    stored block; reads are assembled from stored blocks, the last two decoded kept per
    thread) or :meth:`_read_rows` (any row range, for storage without blocks). Open file
    handles live in :meth:`_state` (one namespace per thread, dropped when pickled).
    """

    path: str
    sample_ids: list[str]
    n_features: int
    dtype: np.dtype
    natural_block_rows: int

    def read(self, start: int, stop: int, samples: Sequence[str] | None = None, *,
             order: str = "C", buffer: NDArray[np.floating] | None = None) -> FeatureBlock:
        """Rows ``start:stop`` (0-based, ``stop`` excluded), the columns of ``samples``.

        Parameters
        ----------
        start, stop : int
            The rows, ``0 <= start <= stop <= n_features``.
        samples : sequence of str, optional
            Sample IDs to return, in that order; all samples in file order when None.
        order : {"C", "A"}
            ``"C"``: the values C-contiguous (a row's samples side by side). ``"A"``: C or
            Fortran order, whichever the storage gives without interleaving: a Parquet row
            group's sample columns are decoded one by one, and putting them side by side costs
            more than decoding them (the dense fit reads either layout).
        buffer : array, optional
            With ``order="A"``: a Fortran-ordered array of shape (stop - start, n_selected) and
            dtype :attr:`dtype` that the reader may fill with the sample columns and return as
            the block's values, instead of a new array (fresh memory costs more than the copy
            into it). A caller reading block after block on one thread passes the same one;
            the block's values are then only valid until the next read into it. Ignored when
            it does not fit, or the storage needs no copy.

        Returns
        -------
        FeatureBlock
            ``values`` of shape (stop - start, n_selected_samples), dtype :attr:`dtype`,
            laid out as ``order`` asks, NaN for missing values.

        Raises
        ------
        InputError
            If the range is outside the matrix, a sample is not in the file, or the stored
            block is corrupt or truncated (the message names the block and its rows).
        DataError
            If a value in the rows is infinite.
        """
        start, stop = self._check_range(start, stop)
        return self._read_checked(start, stop, self._sample_positions(samples),
                                  checked_order(order), buffer)

    def blocks(
        self, rows: int, samples: Sequence[str] | None = None,
        start: int = 0, stop: int | None = None, *, order: str = "C",
    ) -> Iterator[FeatureBlock]:
        """Consecutive blocks of ``rows`` rows (the last may be shorter) covering ``start:stop``.

        Parameters
        ----------
        rows : int
            Rows per block; a multiple of :attr:`natural_block_rows` reads each stored block
            once (other sizes work too: the readers keep the last stored block decoded).
        samples, order : optional
            As for :meth:`read`.
        start, stop : int, optional
            The rows to cover; all rows by default.

        Yields
        ------
        FeatureBlock
        """
        if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 1:
            raise InputError(f"rows must be a positive integer, not {rows!r}")
        start, stop = self._check_range(start, self.n_features if stop is None else stop)
        positions = self._sample_positions(samples)
        layout = checked_order(order)
        for first in range(start, stop, int(rows)):
            yield self._read_checked(first, min(stop, first + int(rows)), positions, layout)

    # ------------------------------------------------------------------ for the subclasses

    def _load_block(
        self, index: int, start: int, stop: int, positions: NDArray[np.intp] | None
    ) -> tuple[FeatureIds, StoredValues]:
        """Stored block ``index`` (rows ``start:stop``): feature IDs and the selected samples.

        The values are an array of shape (stop - start, n_selected) in any memory layout, or a
        list of the selected sample columns. Decoding failures raise :meth:`_corrupt`.
        """
        raise NotImplementedError

    def _block_of(self, row: int) -> int:
        """Index of the stored block holding ``row``."""
        return row // max(1, self.natural_block_rows)

    def _block_bounds(self, index: int) -> tuple[int, int]:
        """Rows ``start, stop`` of stored block ``index``."""
        step = max(1, self.natural_block_rows)
        return index * step, min(self.n_features, (index + 1) * step)

    def _state(self) -> Any:
        """This thread's open handles and caches (a fresh namespace after unpickling)."""
        local = self.__dict__.get("_local")
        if local is None:
            local = threading.local()
            self.__dict__["_local"] = local
        return local

    def _corrupt(self, what: str, start: int, stop: int, error: BaseException) -> InputError:
        """The error for a stored block that cannot be decoded."""
        detail = " ".join(str(error).split()).rstrip(".") or type(error).__name__
        return InputError(
            f"{self.path}: {what} ({rows_label(start, stop)}) cannot be read ({detail}); the "
            f"file is corrupt or truncated: copy or write it again (manylm convert)"
        )

    def _read_rows(
        self, start: int, stop: int, positions: NDArray[np.intp] | None, order: str = "C",
        buffer: NDArray[np.floating] | None = None,
    ) -> tuple[FeatureIds, NDArray[np.floating]]:
        """Rows ``start:stop`` assembled from the stored blocks that overlap them.

        With ``order="A"``, stored sample columns are copied into a Fortran-ordered block (no
        interleave; ``buffer`` when it fits), and a stored array is handed over in its own
        layout (pieces of stored arrays are assembled in C order).
        """
        n_selected = len(self.sample_ids) if positions is None else len(positions)
        index = self._block_of(start)
        if stop > start and self._block_bounds(index) == (start, stop):
            # exactly one stored block: hand it over without a copy through the cache
            ids, values = self._load_block(index, start, stop, positions)
            if isinstance(values, list):
                whole = _new_block(stop - start, n_selected, self.dtype, order == "A", buffer)
                columns_to_rows(values, whole)
                return ids, whole
            return ids, values
        out: NDArray[np.floating] | None = None
        id_parts: list[FeatureIds] = []
        row, filled = start, 0
        while row < stop:
            block_start, block_stop = self._block_bounds(index)
            ids, values = self._cached_block(index, block_start, block_stop, positions)
            if out is None:  # by column only from stored columns: a C array's rows stay rows
                by_column = order == "A" and isinstance(values, list)
                out = _new_block(stop - start, n_selected, self.dtype, by_column, buffer)
            lo, hi = row - block_start, min(stop, block_stop) - block_start
            id_parts.append(ids[lo:hi])
            if isinstance(values, list):
                columns_to_rows([c[lo:hi] for c in values], out[filled:filled + hi - lo])
            else:
                out[filled:filled + hi - lo] = values[lo:hi]
            filled += hi - lo
            row = block_start + hi
            index += 1
        if out is None:  # no rows
            out = _new_block(0, n_selected, self.dtype, False)
        return _concatenate_ids(id_parts), out

    def _cached_block(
        self, index: int, start: int, stop: int, positions: NDArray[np.intp] | None
    ) -> tuple[FeatureIds, StoredValues]:
        """:meth:`_load_block`, keeping this thread's last two blocks decoded.

        Reads that straddle stored blocks then decode each stored block once.
        """
        cache: dict[tuple[Any, ...], Any] = self._state().__dict__.setdefault("blocks", {})
        key = (index, None if positions is None else positions.tobytes())
        if key not in cache:
            if len(cache) >= _CACHED_BLOCKS:
                cache.pop(next(iter(cache)))
            cache[key] = self._load_block(index, start, stop, positions)
        return cache[key]

    # ------------------------------------------------------------------ shared checks

    def _check_range(self, start: int, stop: int) -> tuple[int, int]:
        for name, value in (("start", start), ("stop", stop)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise InputError(f"{name} must be an integer row index, not {value!r}")
        if not 0 <= start <= stop <= self.n_features:
            raise InputError(
                f"{self.path}: rows {start}:{stop} are outside the matrix, which has "
                f"{self.n_features:,} feature rows (0 <= start <= stop <= {self.n_features})"
            )
        return int(start), int(stop)

    def _sample_positions(self, samples: Sequence[str] | None) -> NDArray[np.intp] | None:
        if samples is None:
            return None
        if isinstance(samples, str):
            raise InputError(f"samples must be a list of sample IDs, not the string {samples!r}")
        wanted = [str(s) for s in samples]
        index = self.__dict__.get("_sample_index")
        if index is None:
            index = {s: i for i, s in enumerate(self.sample_ids)}
            self.__dict__["_sample_index"] = index
        missing = [s for s in wanted if s not in index]
        if missing:
            raise InputError(
                f"{self.path}: {len(missing)} requested sample(s) are not in the file: "
                f"{quote_ids(missing, 5)}; the file has {len(self.sample_ids)} samples "
                f"({quote_ids(self.sample_ids, 3)}); check the sample IDs"
            )
        repeated = duplicated_ids(wanted)
        if repeated:
            raise InputError(f"samples: {quote_ids(repeated, 5)} requested more than once")
        positions = np.fromiter((index[s] for s in wanted), dtype=np.intp, count=len(wanted))
        if np.array_equal(positions, np.arange(len(self.sample_ids))):
            return None
        return positions

    def _read_checked(
        self, start: int, stop: int, positions: NDArray[np.intp] | None, order: str = "C",
        buffer: NDArray[np.floating] | None = None,
    ) -> FeatureBlock:
        feature_ids, values = self._read_rows(start, stop, positions, order, buffer)
        values = np.asarray(values, dtype=self.dtype)
        if not (values.flags.c_contiguous or (order == "A" and values.flags.f_contiguous)):
            values = np.ascontiguousarray(values)
        if len(feature_ids) != stop - start or values.shape[0] != stop - start:
            raise InputError(
                f"{self.path}: {rows_label(start, stop)}: {len(feature_ids)} feature IDs and "
                f"{values.shape[0]} value rows were stored for {stop - start} rows; the file "
                f"is truncated or inconsistent: write it again"
            )
        self._reject_infinite(values, feature_ids, start, stop, positions)
        return FeatureBlock(start, feature_ids, values)

    def _reject_infinite(
        self, values: NDArray[np.floating], feature_ids: FeatureIds, start: int,
        stop: int, positions: NDArray[np.intp] | None,
    ) -> None:
        # max/min ignoring NaN find an infinity without a boolean temporary of the block's size
        # (a block of NaN only, every value missing, gives NaN: no infinity)
        if values.size == 0 or not (np.fmax.reduce(values, axis=None) == np.inf
                                    or np.fmin.reduce(values, axis=None) == -np.inf):
            return
        bad = np.isinf(values)
        row = int(np.argmax(bad.any(axis=1)))
        column = int(np.argmax(bad[row]))
        sample = self.sample_ids[column if positions is None else int(positions[column])]
        count = int(bad.sum())
        more = f" ({count - 1} more in these rows)" if count > 1 else ""
        raise DataError(
            f"{self.path}: {rows_label(start, stop)}: feature {id_text(feature_ids, row)!r} (row "
            f"{start + row:,}), sample {sample!r}: value {values[row, column]} is infinite{more}; "
            f"values must be finite numbers, with NaN for a missing value"
        )

    # ------------------------------------------------------------------ pickling, display

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_local", "_sample_index")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.path!r}, {self.n_features:,} features x "
                f"{len(self.sample_ids):,} samples, {np.dtype(self.dtype).name})")


def _concatenate_ids(parts: list[FeatureIds]) -> FeatureIds:
    """The IDs of consecutive stored blocks as one array (Arrow text stays Arrow text)."""
    if parts and all(isinstance(p, pa.Array) for p in parts):
        return pa.concat_arrays([id_array(p) for p in parts])
    return np.concatenate([np.empty(0, dtype=object)] + [
        p.to_numpy(zero_copy_only=False).astype(object) if isinstance(p, pa.Array) else p
        for p in parts])


def checked_order(order: str) -> str:
    """``order`` when it is one of :data:`ORDERS`; else the InputError every reader gives."""
    if order not in ORDERS:
        raise InputError(f"order must be one of {', '.join(map(repr, ORDERS))}, not {order!r}")
    return order


def _new_block(n_rows: int, n_columns: int, dtype: np.dtype, by_column: bool,
               buffer: NDArray[np.floating] | None = None) -> NDArray[np.floating]:
    """An empty rows x samples block, C-ordered or (``by_column``) Fortran-ordered: ``buffer``
    when it is a writable Fortran-ordered array of that shape and dtype."""
    if (by_column and buffer is not None and buffer.shape == (n_rows, n_columns)
            and buffer.dtype == dtype and buffer.flags.f_contiguous and buffer.flags.writeable):
        return buffer
    return np.empty((n_rows, n_columns), dtype=dtype, order="F" if by_column else "C")


def columns_to_rows(columns: Sequence[NDArray[np.floating]], out: NDArray[np.floating]) -> None:
    """Put 1-D sample columns side by side in the rows x samples array ``out`` (in place).

    Into an ``out`` stored by column (Fortran order, or rows of it) each column is one
    contiguous copy. Into a C-ordered one they are interleaved a step of a few thousand rows at
    a time, which keeps the reads and the writes in cache: about twice as fast as
    ``numpy.stack(columns, axis=1)`` on whole columns, and several times slower than the copies.
    """
    if out.ndim == 2 and out.shape[1] > 1 and out.strides[0] == out.itemsize:
        for j, column in enumerate(columns):
            out[:, j] = column
        return
    n_rows = out.shape[0]
    for first in range(0, n_rows, _TRANSPOSE_ROWS):
        last = min(n_rows, first + _TRANSPOSE_ROWS)
        np.stack([c[first:last] for c in columns], axis=1, out=out[first:last])


def block_rows_for_bytes(n_samples: int, itemsize: int, target: int = DEFAULT_BLOCK_BYTES) -> int:
    """Rows of a stored block of about ``target`` bytes: a multiple of 1024, at least 1024."""
    rows = target // max(1, n_samples * itemsize)
    return max(1024, (rows // 1024) * 1024)


def refuse_non_text_ids(label: str, name: str, dtype: Any, layout: str) -> None:
    """InputError unless a Zarr/HDF5 ID array (``name``) holds text (bytes, str, or objects)."""
    if getattr(dtype, "kind", None) not in ("O", "S", "U", "T"):
        raise InputError(
            f"{label}: {name!r} has dtype {dtype}; it must hold strings (expected {layout})"
        )


def decode_ids(ids: Any) -> NDArray[np.object_]:
    """IDs from a Zarr/HDF5/numpy string array as an object array of ``str``."""
    array = np.asarray(ids)
    if array.dtype == object and array.size and isinstance(array.flat[0], bytes):
        array = array.astype(np.bytes_)
    if array.dtype.kind == "S":
        array = np.char.decode(array, "utf-8")
    return array.astype(object)
