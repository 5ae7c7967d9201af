"""Parquet matrices read and written a row group at a time.

The layout is the one :func:`manylm.io.read_matrix` reads: feature IDs in the first column (or
the stored pandas index), one numeric column per sample, one row per feature. Reading a block
decodes only the row groups that overlap it, and only the requested sample columns; the last
row groups decoded are kept (per thread), so blocks that do not align with row groups still
decode each row group once. Each row group is decoded from a memory map of the file made for
it and dropped after (reading into a buffer first costs a kernel copy of every byte, a quarter
of decoding; a map of the whole file would count every page read in the resident memory). The
file's size (and, on the machine that opened it, its modification time) is checked first: a
file cut short, replaced or removed during a run gives an error, rather than a bus error or rows
of two files (a file cut short in the moment between the check and the decoding still faults).
``manylm convert`` writes uncompressed pages (genomic floats barely compress) with CRC
checksums, so a corrupt page is detected rather than read as numbers.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import NDArray

from manylm.errors import DataError, InputError
from manylm.io._ids import duplicated_ids, quote_ids
from manylm.io._matrix_checks import _check_sample_ids
from manylm.io.block_sources import BlockSourceBase, rows_label

__all__ = ["FeatureIdLayout", "ParquetBlockSource", "ParquetMatrixWriter", "feature_id_layout",
           "float64_values"]


class ParquetBlockSource(BlockSourceBase):
    """A Parquet features x samples matrix read by row groups.

    Parameters
    ----------
    path : str or path-like
        The ``.parquet`` file.

    Attributes
    ----------
    path, sample_ids, n_features, dtype, natural_block_rows
        See :class:`~manylm.io.feature_blocks.FeatureBlockSource`. ``dtype`` is float32 when
        every sample column is float32, float64 otherwise (integer columns are read as
        float64); ``natural_block_rows`` is the largest row group.
    row_group_starts : numpy.ndarray of int64, shape (n_row_groups + 1,)
        First row of each row group, then the number of rows.

    Raises
    ------
    InputError
        If the file is not Parquet or is truncated (no footer), or has no sample columns.
    DataError
        If the feature ID column is not strings or integers, or a sample column is not numeric.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._file_path = Path(path)
        parquet = self._open()
        schema = parquet.schema_arrow
        self._ids = feature_id_layout(schema, self.path)
        self.sample_ids = [name for name in schema.names if name != self._ids.column]
        if not self.sample_ids:
            raise InputError(
                f"{self.path}: the Parquet file has {len(schema.names)} column(s); a matrix "
                f"needs the feature IDs and one column per sample"
            )
        _check_sample_ids(self.sample_ids, self.path, "expression")
        all_float32 = True
        for name in self.sample_ids:
            t = schema.field(name).type
            if not (pa.types.is_floating(t) or pa.types.is_integer(t)):
                raise DataError(
                    f"{self.path}: sample column {name!r} has type {t}; reading by blocks "
                    f"needs numeric sample columns: write them as numbers (float32 or float64; "
                    f"a fit without --memory or --dask reads other types whole)"
                )
            all_float32 = all_float32 and pa.types.is_float32(t)
        self.dtype = np.dtype(np.float32 if all_float32 else np.float64)
        metadata = parquet.metadata
        group_rows = [metadata.row_group(k).num_rows for k in range(metadata.num_row_groups)]
        self.row_group_starts = np.concatenate([[0], np.cumsum(group_rows, dtype=np.int64)])
        self.n_features = int(self.row_group_starts[-1])
        self.natural_block_rows = max(group_rows, default=1) or 1
        self._opened = _file_stamp(self._file_path)
        self._state().file = parquet

    def _open(self) -> pq.ParquetFile:
        try:
            return pq.ParquetFile(self._file_path, page_checksum_verification=True)
        except (pa.ArrowException, OSError) as error:
            raise InputError(
                f"{self.path}: cannot read the file as Parquet ({error}); it is not Parquet or "
                f"it is truncated: write it again"
            ) from error

    def _mapped(self, parquet: pq.ParquetFile, start: int, stop: int) -> pq.ParquetFile | None:
        """The file memory-mapped, with the footer already read; None where it cannot be
        mapped (the caller reads through ``parquet``).

        Raises InputError when the file is not the one opened: gone, or its size changed, or
        (on the machine that opened it: Dask workers elsewhere may read their own copy) its
        modification time, to the second. Mapped, a shorter file would fault.
        """
        try:
            now = _file_stamp(self._file_path)
        except OSError as error:
            raise InputError(
                f"{self.path}: the file can no longer be read ({error.strerror or error}): it "
                f"was moved or removed while it was read ({rows_label(start, stop)} not read); "
                f"run again with the file in place"
            ) from error
        (size, modified, host), (size_then, modified_then, host_then) = now, self._opened
        if size != size_then or (host == host_then and abs(modified - modified_then) > 1):
            raise InputError(
                f"{self.path}: the file changed while it was read (now {size:,} bytes, "
                f"{size_then:,} when this run opened it; {rows_label(start, stop)} not read): "
                f"it was cut short, rewritten or replaced; run again once it is complete"
            )
        try:
            return pq.ParquetFile(self._file_path, page_checksum_verification=True,
                                  memory_map=True, metadata=parquet.metadata)
        except (pa.ArrowException, OSError):
            return None

    def _block_of(self, row: int) -> int:
        return int(np.searchsorted(self.row_group_starts, row, side="right")) - 1

    def _block_bounds(self, index: int) -> tuple[int, int]:
        return int(self.row_group_starts[index]), int(self.row_group_starts[index + 1])

    def _load_block(
        self, index: int, start: int, stop: int, positions: NDArray[np.intp] | None
    ) -> tuple[pa.Array, list[NDArray[np.floating]]]:
        """Feature IDs and the decoded sample columns of row group ``index``."""
        names = self.sample_ids if positions is None else [self.sample_ids[i] for i in positions]
        state = self._state()
        parquet = state.__dict__.get("file") or self._open()
        state.file = parquet
        mapped = self._mapped(parquet, start, stop)
        id_columns = [] if self._ids.column is None else [self._ids.column]
        try:
            table = (mapped or parquet).read_row_group(
                index, columns=[*id_columns, *names], use_threads=True,
                use_pandas_metadata=False)
        except (pa.ArrowException, OSError) as error:
            raise self._corrupt(f"row group {index}", start, stop, error) from error
        finally:
            if mapped is not None:
                mapped.close()  # the decoded columns keep what they use of the map
        if table.num_rows != stop - start:
            raise InputError(
                f"{self.path}: row group {index} ({rows_label(start, stop)}) has "
                f"{table.num_rows} rows instead of {stop - start}; the file is corrupt: write "
                f"it again"
            )
        if self._ids.column is None:
            feature_ids = self._ids.range_ids(start, stop)
        else:
            feature_ids = _id_strings(table.column(0), self.path, start)
        columns = []
        for name, column in zip(names, table.columns[len(id_columns):], strict=True):
            if not pa.types.is_floating(column.type):
                column = float64_values(column, self.path, name, start, feature_ids)
            columns.append(np.asarray(column.to_numpy(), dtype=self.dtype))
        return feature_ids, columns


def _file_stamp(path: Path) -> tuple[int, float, str]:
    """Size and modification time (seconds) of a file, and the machine that looked."""
    status = path.stat()
    return status.st_size, status.st_mtime, socket.gethostname()


class FeatureIdLayout(NamedTuple):
    """Where a Parquet matrix keeps its feature IDs: a ``column``, or (``column`` None) a pandas
    RangeIndex that ``DataFrame.to_parquet`` stored as numbers in the file's metadata, no
    column: the IDs are then ``range_start + range_step * row``, as pandas reads them back."""

    column: str | None
    range_start: int = 0
    range_step: int = 1

    def range_ids(self, start: int, stop: int) -> pa.Array:
        """The IDs of rows ``start:stop`` of a RangeIndex, as text."""
        rows = np.arange(start, stop, dtype=np.int64) * self.range_step + self.range_start
        return pc.cast(pa.array(rows), pa.large_string())


def feature_id_layout(schema: pa.Schema, label: str) -> FeatureIdLayout:
    """Where the feature IDs of a Parquet matrix are: the stored pandas index when it is one
    column, else the first column, which must hold text or integers; when it holds other
    numbers, the pandas RangeIndex the file stores, if any.

    Raises InputError for a file without columns, with two columns of one name, or with an
    index of several levels; DataError when the ID column holds neither text nor integers.
    """
    names = schema.names
    if not names:
        raise InputError(f"{label}: the Parquet file has no columns")
    repeated = duplicated_ids(names)
    if repeated:
        raise InputError(
            f"{label}: the Parquet file has several columns named {quote_ids(repeated, 5)}; "
            f"every column (the feature IDs, then one per sample) needs a name of its own: "
            f"rename the repeated columns and write the file again"
        )
    index = (schema.pandas_metadata or {}).get("index_columns", [])
    if len(index) > 1:
        raise InputError(
            f"{label}: the Parquet file stores a {len(index)}-level index; write it with a "
            f"single feature ID index or with the feature IDs as the first column"
        )
    column = index[0] if index and isinstance(index[0], str) and index[0] in names else names[0]
    id_type = schema.field(column).type
    if pa.types.is_dictionary(id_type):
        id_type = id_type.value_type
    if not (_is_text(id_type) or pa.types.is_integer(id_type)):
        if (index and isinstance(index[0], dict) and index[0].get("kind") == "range"
                and not any(_is_text(field.type) for field in schema)):
            # no ID column, only the row numbers pandas keeps (not when the first column
            # holds text or integers: df.reset_index().to_parquet() keeps them too; nor when
            # another column holds text, likely the IDs out of place)
            return FeatureIdLayout(None, int(index[0].get("start", 0)),
                                   int(index[0].get("step", 1)))
        raise DataError(
            f"{label}: the feature ID column {column!r} has type {id_type}; it must hold "
            f"strings (store the feature IDs as the first column, of string type)"
        )
    return FeatureIdLayout(column)


def _is_text(data_type: pa.DataType) -> bool:
    if pa.types.is_dictionary(data_type):
        data_type = data_type.value_type
    return bool(pa.types.is_string(data_type) or pa.types.is_large_string(data_type)
                or pa.types.is_string_view(data_type))


#: Doubles hold every integer up to this one (2^53) exactly, not every one beyond.
EXACT_INTEGERS = 2**53


def float64_values(column: pa.ChunkedArray | pa.Array, label: str, sample: str,
                   first_row: int, feature_ids: pa.Array) -> pa.ChunkedArray | pa.Array:
    """A sample column of integers (or other numbers) as float64, rows ``first_row`` on.

    Raises DataError naming the first integer beyond +-2^53, which a double would round (in a
    matrix of measurements, usually a code for a missing value).
    """
    try:
        return pc.cast(column, pa.float64())
    except pa.ArrowInvalid as error:
        if not pa.types.is_integer(column.type):
            raise
        whole = (column if isinstance(column, pa.Array) else column.combine_chunks())
        values = whole.to_numpy(zero_copy_only=False)  # float when there are nulls: to find
        big = np.flatnonzero(np.abs(values.astype(np.float64)) > EXACT_INTEGERS)
        if not big.size:
            raise
        at = int(big[0])
        raise DataError(
            f"{label}: sample column {sample!r} holds {whole[at].as_py()} for feature "
            f"{feature_ids[at].as_py()!r} (row {first_row + at:,}; {big.size:,} such value(s) "
            f"in {rows_label(first_row, first_row + len(values))}): an integer too large to "
            f"fit exactly (beyond 2^53); if it codes a missing value, write it as null or NaN"
        ) from error


def _id_strings(column: pa.ChunkedArray, label: str, first_row: int) -> pa.Array:
    """The feature IDs of a row group as Arrow text (no Python string per ID)."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    column = pc.cast(column, pa.large_string())
    if column.null_count:
        row = first_row + int(pc.indices_nonzero(pc.is_null(column).combine_chunks())[0].as_py())
        raise DataError(
            f"{label}: row {row:,} has no feature ID (null); give every row an ID in the "
            f"feature ID column"
        )
    return column.combine_chunks()


class ParquetMatrixWriter:
    """Write a features x samples matrix to Parquet, block by block, in fixed-size row groups.

    Parameters
    ----------
    path : pathlib.Path
        The file to create (a temporary name: the caller renames it when complete).
    sample_ids : list of str
        The sample columns, in order.
    dtype : numpy.dtype
        float32 or float64.
    row_group_rows : int
        Rows per row group (the last may be shorter).
    """

    def __init__(self, path: Path, sample_ids: Sequence[str], dtype: np.dtype,
                 row_group_rows: int) -> None:
        id_name = next(n for n in ("feature", "feature_id", "_feature") if n not in sample_ids)
        value_type = pa.float32() if dtype == np.float32 else pa.float64()
        self.schema = pa.schema(
            [pa.field(id_name, pa.string(), nullable=False)]
            + [pa.field(s, value_type) for s in sample_ids],
            metadata={b"manylm": json.dumps({"layout": "features x samples"}).encode()},
        )
        self.dtype = np.dtype(dtype)
        self.row_group_rows = row_group_rows
        self.n_rows = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._writer = pq.ParquetWriter(
            path, self.schema, compression="none", use_dictionary=False,
            write_statistics=False, write_page_checksum=True,
        )

    def write(self, feature_ids: pa.Array | NDArray[np.object_],
              values: NDArray[np.floating]) -> None:
        """Append rows: IDs of shape (n_rows,), values of shape (n_rows, n_samples)."""
        arrays = [pa.array(feature_ids, type=pa.string())]
        arrays += [pa.array(np.asarray(values[:, j], dtype=self.dtype))
                   for j in range(values.shape[1])]
        self._pending.append(pa.Table.from_arrays(arrays, schema=self.schema))
        self._pending_rows += values.shape[0]
        while self._pending_rows >= self.row_group_rows:
            self._flush(self.row_group_rows)

    def _flush(self, n_rows: int) -> None:
        table = pa.concat_tables(self._pending)
        self._writer.write_table(table.slice(0, n_rows), row_group_size=n_rows)
        rest = table.slice(n_rows)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows
        self.n_rows += n_rows

    def close(self) -> int:
        """Write the last row group and the footer; return the number of rows written."""
        if self._pending_rows:
            self._flush(self._pending_rows)
        self._writer.close()
        return self.n_rows

    def abort(self) -> None:
        """Close the file after a failure (the caller deletes it)."""
        try:
            self._writer.close()
        except (OSError, pa.ArrowException):
            pass
