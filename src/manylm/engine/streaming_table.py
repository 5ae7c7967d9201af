"""Writing the results table block by block, in file order or sorted, never half-written.

The table rows are computed chunk by chunk and kept (in memory or spilled) with the adjusted
p-values; this module writes them out in blocks: in row order (``sort_by="none"``), or in the
order of the sort key, gathering each block's rows from the store. Sorting needs the key's order
of all features in memory (one int64 per feature, 80 MB for 10^7 features, and its inverse while
sorting a spilled table); a spilled table is sorted by distributing its rows to one file per
output block in one sequential pass, then sorting each block (about 100 more bytes per feature
written and read once: no random reads, whatever the size).

The text and Parquet output is the same as :func:`manylm.io.write_table` writes for the
in-memory table (Arrow's CSV writer, the same quoting rule, ``NA`` for missing values, zstd
Parquet). A file is written under a temporary name (in the run's spill directory when it is on
the same file system, else beside the target) and renamed onto the target when complete.
"""

from __future__ import annotations

import collections
import contextlib
import gzip
import io
import os
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from numpy.typing import NDArray

from manylm.engine.spill import FeatureStore, IdStore, disk_full_as_error
from manylm.inference.adjust import adjust_in_order
from manylm.inference.ordering import stable_argsort
from manylm.io.atomic import atomic_path
from manylm.io.tables import check_table_path
from manylm.parallel import cpu_count

__all__ = ["SORT_KEY_FIELD", "TableWriter", "adjust_and_order", "collect_table", "finish_table",
           "open_table", "sort_key", "write_table_blocks"]

ID_COLUMN = "feature"
#: Rows per written block: formatted text is ~130 bytes per row, a few blocks are in flight.
WRITE_BLOCK_ROWS = 1 << 18
#: At most this many output blocks (files) when a spilled table is sorted.
MAX_BUCKETS = 256
_GZIP_LEVEL = 1  # as manylm.io.write_table


class TableWriter:
    """Appends blocks of rows to one table file (or standard output).

    A block is first *prepared* (made an Arrow table and, for text, formatted), which worker
    threads can do for several blocks at once, then *appended* in order by one thread.
    """

    def __init__(self, sink: IO[bytes] | str | os.PathLike[str], fmt: Any,
                 quote: bool) -> None:
        self._sink = sink
        self._format = fmt
        self._quote = quote
        self._parquet: Any = None
        self._header_written = False
        self.rows = 0

    def _options(self, names: list[str], header: bool) -> pacsv.WriteOptions:
        quoting = "needed" if self._quote or _names_need_quotes(
            names, self._format.delimiter) else "none"
        return pacsv.WriteOptions(delimiter=self._format.delimiter, null_string="NA",
                                  quoting_style=quoting, quoting_header=quoting,
                                  include_header=header)

    def prepare(self, ids: pa.Array | NDArray[np.integer],
                columns: dict[str, NDArray[Any]]) -> tuple[pa.Table, bytes | None]:
        """A block as an Arrow table and, for text, its formatted lines (thread-safe)."""
        id_array = pa.array(ids, type=pa.int64()) if isinstance(ids, np.ndarray) else (
            ids.cast(pa.string()))
        arrays = [id_array] + [pa.array(v, from_pandas=True) for v in columns.values()]
        table = pa.Table.from_arrays(arrays, names=[ID_COLUMN, *columns])
        if self._format.name == "parquet":
            return table, None
        text = io.BytesIO()
        pacsv.write_csv(table, text, self._options(table.column_names, header=False))
        return table, text.getvalue()

    def append(self, prepared: tuple[pa.Table, bytes | None]) -> None:
        """Write a prepared block after the previous ones."""
        table, text = prepared
        if self._format.name == "parquet":
            if self._parquet is None:
                import pyarrow.parquet as pq

                self._parquet = pq.ParquetWriter(self._sink, table.schema, compression="zstd")
            self._parquet.write_table(table)
        else:
            assert text is not None and not isinstance(self._sink, (str, os.PathLike))
            if not self._header_written:
                header = io.BytesIO()
                pacsv.write_csv(table.slice(0, 0), header,
                                self._options(table.column_names, header=True))
                self._sink.write(header.getvalue())
                self._header_written = True
            self._sink.write(text)
        self.rows += table.num_rows

    def write(self, ids: pa.Array | NDArray[np.integer], columns: dict[str, NDArray[Any]]) -> None:
        """Prepare and append one block: its feature IDs and its columns (NaN: missing)."""
        self.append(self.prepare(ids, columns))

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None


def _names_need_quotes(names: list[str], delimiter: str) -> bool:
    return any(any(ch in name for ch in (delimiter, '"', "\r", "\n")) for name in names)


@contextlib.contextmanager
def open_table(out: str | os.PathLike[str] | None, *, special_characters: set[str],
               temp_dir: Path | None = None) -> Iterator[TableWriter]:
    """A :class:`TableWriter` for ``out`` (by suffix; None or ``"-"``: TSV on standard output).

    The file is moved onto ``out`` only when the block exits normally; on any error (or
    Ctrl-C) the partial file is deleted and ``out`` is left as it was.

    Parameters
    ----------
    special_characters : set of str
        Characters found in the feature IDs (see :class:`IdStore`): quoting is needed when
        the delimiter, a quote or a line break is among them, as :func:`manylm.io.write_table`
        decides.
    temp_dir : path, optional
        Where to write the temporary file if it is on the same file system as ``out``.
    """
    fmt = check_table_path(out)
    delimiter = fmt.delimiter or "\t"
    quote = bool(special_characters & {delimiter, '"', "\n", "\r"})
    if out is None or os.fspath(out) == "-":
        writer = TableWriter(sys.stdout.buffer, fmt, quote)
        with disk_full_as_error("writing the table to standard output"):
            sys.stdout.flush()
            yield writer
            writer.close()
            sys.stdout.buffer.flush()
        return
    target = Path(out)
    label = f"writing the table {os.fspath(out)}"
    if temp_dir is not None and _same_device(temp_dir, target.absolute().parent):
        temporary = temp_dir / f"table.{target.name}"
        try:
            with disk_full_as_error(label):
                with _opened(temporary, fmt) as sink:
                    writer = TableWriter(sink, fmt, quote)
                    yield writer
                    writer.close()
                os.replace(temporary, target)
        finally:
            with contextlib.suppress(OSError):
                temporary.unlink()
        return
    with disk_full_as_error(label), atomic_path(target) as temporary_path, \
            _opened(temporary_path, fmt) as sink:
        writer = TableWriter(sink, fmt, quote)
        yield writer
        writer.close()


@contextlib.contextmanager
def _opened(path: Path, fmt: Any) -> Iterator[Any]:
    if fmt.name == "parquet":
        yield str(path)
        return
    with open(path, "wb") as handle:
        if fmt.gzip:
            # no name or time stamp in the header: the same table gives the same bytes
            with gzip.GzipFile(filename="", mode="wb", fileobj=handle,
                               compresslevel=_GZIP_LEVEL, mtime=0) as compressed:
                yield compressed
        else:
            yield handle


def _same_device(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def _blocks(results: FeatureStore, names: list[str], ids: IdStore | None,
            order: NDArray[np.intp] | None, block_rows: int
            ) -> Iterator[tuple[pa.Array | NDArray[np.int64], dict[str, NDArray[np.float64]]]]:
    """The table's rows in blocks: ``(ids, {column: values})``, in row or in sorted order."""
    n_rows = results.n_rows
    if order is not None and results.directory is not None:
        yield from _bucketed(results, names, ids, order, block_rows)
        return
    for start in range(0, n_rows, block_rows):
        stop = min(n_rows, start + block_rows)
        if order is None:
            columns = {name: results.read(name, start, stop) for name in names}
            block_ids: pa.Array | NDArray[np.int64] = (
                np.arange(start, stop, dtype=np.int64) if ids is None else ids.read(start, stop))
        else:
            rows = order[start:stop]
            columns = {name: results.gather(name, rows) for name in names}
            block_ids = rows.astype(np.int64) if ids is None else ids.gather(rows)
        yield block_ids, columns


def _bucketed(results: FeatureStore, names: list[str], ids: IdStore | None,
              order: NDArray[np.intp], block_rows: int
              ) -> Iterator[tuple[pa.Array | NDArray[np.int64], dict[str, NDArray[np.float64]]]]:
    """Sorted blocks of a spilled table, by a distribution pass instead of random reads.

    One pass over the stored rows, in file order, sends each row (its rank in the output, its
    values, its ID) to the files of the output block it belongs to; each block's files are then
    read, sorted by rank, and deleted. Every row is read and written twice, sequentially,
    however large the table (gathering each output block from the whole store would read the
    store once per block).
    """
    assert results.directory is not None
    folder = results.directory
    n_rows = results.n_rows
    block_rows = max(block_rows, -(-n_rows // MAX_BUCKETS))
    n_buckets = -(-n_rows // block_rows)
    rank = np.empty(n_rows, dtype=np.int64)
    rank[order] = np.arange(n_rows, dtype=np.int64)
    width = 2 + len(names)  # rank, row, the columns: float64 holds them exactly
    values_paths = [folder / f"sorted.{k:05d}.f8" for k in range(n_buckets)]
    ids_paths = [folder / f"sorted.{k:05d}.ids" for k in range(n_buckets)]
    id_writers: list[Any] = [None] * n_buckets
    scan_rows = max(block_rows, 1 << 16)
    try:
        with disk_full_as_error(f"writing temporary files in {folder}"):
            for start in range(0, n_rows, scan_rows):
                stop = min(n_rows, start + scan_rows)
                bucket = rank[start:stop] // block_rows
                sorter = np.argsort(bucket, kind="stable")
                rows = np.empty((stop - start, width))
                rows[:, 0] = rank[start:stop]
                rows[:, 1] = np.arange(start, stop)
                for i, name in enumerate(names):
                    rows[:, 2 + i] = results.read(name, start, stop)
                rows = rows[sorter]
                chunk_ids = None if ids is None else ids.read(start, stop).take(
                    pa.array(sorter))
                bounds = np.concatenate([[0], np.cumsum(np.bincount(bucket,
                                                                    minlength=n_buckets))])
                for bucket_index in np.flatnonzero(np.diff(bounds)):
                    k = int(bucket_index)
                    first, last = int(bounds[k]), int(bounds[k + 1])
                    with open(values_paths[k], "ab") as handle:
                        handle.write(rows[first:last].data)
                    if chunk_ids is not None:
                        if id_writers[k] is None:
                            id_writers[k] = pa.ipc.new_stream(
                                pa.OSFile(str(ids_paths[k]), "wb"),
                                pa.schema([(ID_COLUMN, chunk_ids.type)]))
                        id_writers[k].write_batch(pa.record_batch(
                            [chunk_ids.slice(first, last - first)], names=[ID_COLUMN]))
            for writer in id_writers:
                if writer is not None:
                    writer.close()
        id_writers = []
        del rank
        for k in range(n_buckets):
            part = np.fromfile(values_paths[k]).reshape(-1, width)
            values_paths[k].unlink()
            within = np.argsort(part[:, 0])
            part = part[within]
            if ids is None:
                block_ids: pa.Array | NDArray[np.int64] = part[:, 1].astype(np.int64)
            else:
                with pa.OSFile(str(ids_paths[k]), "rb") as handle:
                    stored = pa.ipc.open_stream(handle).read_all()[ID_COLUMN]
                ids_paths[k].unlink()
                block_ids = stored.combine_chunks().take(pa.array(within))
            yield block_ids, {name: np.ascontiguousarray(part[:, 2 + i])
                              for i, name in enumerate(names)}
    finally:
        for writer in id_writers:
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.close()
        for path in (*values_paths, *ids_paths):
            with contextlib.suppress(OSError):
                path.unlink()


def write_table_blocks(writer: TableWriter, results: FeatureStore, names: list[str],
                       ids: IdStore | None, order: NDArray[np.intp] | None, block_rows: int,
                       n_threads: int | None = None) -> None:
    """Write every row of ``results`` (columns ``names``) through ``writer``.

    Blocks are gathered and formatted by ``n_threads`` threads (default: every core), a few
    blocks ahead, and written in order by this one.

    Parameters
    ----------
    ids : IdStore or None
        Feature IDs; None writes row numbers (features known by position).
    order : int array of shape (n_features,), optional
        Rows in output order (None: row order).
    """
    block_rows = max(1, min(block_rows, WRITE_BLOCK_ROWS))
    blocks = _blocks(results, names, ids, order, block_rows)
    window = max(2, n_threads or cpu_count())
    with ThreadPoolExecutor(window, thread_name_prefix="manylm-write") as pool:
        pending: collections.deque[Future[Any]] = collections.deque()
        try:
            for block_ids, columns in blocks:
                pending.append(pool.submit(writer.prepare, block_ids, columns))
                if len(pending) >= window:
                    writer.append(pending.popleft().result())
            while pending:
                writer.append(pending.popleft().result())
        finally:
            for future in pending:
                future.cancel()


def collect_table(results: FeatureStore, names: list[str], ids: IdStore | None,
                  order: NDArray[np.intp] | None, block_rows: int) -> pd.DataFrame:
    """The whole table as a DataFrame indexed by feature, as :func:`manylm.top_table` returns."""
    parts = list(_blocks(results, names, ids, order, block_rows))
    values = {name: np.concatenate([p[1][name] for p in parts]) for name in names}
    if ids is None:
        index = pd.Index(np.concatenate([p[0] for p in parts]), name=ID_COLUMN)
    else:
        strings = pa.concat_arrays([p[0] for p in parts]).to_numpy(zero_copy_only=False)
        index = pd.Index(strings.astype(object), name=ID_COLUMN)
    return pd.DataFrame(values, index=index)


def sort_key(columns: dict[str, NDArray[np.float64]], sort_by: str) -> NDArray[np.float64] | None:
    """A chunk's values of the sort key, ascending (as :func:`manylm.top_table` sorts).

    ``"t"`` and ``"estimate"`` sort by absolute value, largest first (the F table: the largest
    tested |estimate|); ``"B"`` and ``"mean"`` largest first; None for ``"p"`` and ``"none"``.
    """
    single = "t" in columns
    if sort_by == "t":
        return -np.abs(columns["t"] if single else columns["F"])
    if sort_by == "estimate":
        if single:
            return -np.abs(columns["estimate"])
        names = list(columns)[: list(columns).index("mean")]
        with np.errstate(invalid="ignore"):
            # all-NaN rows give NaN (sorted last), as in top_table
            stacked = np.abs(np.column_stack([columns[n] for n in names]))
            return -np.where(np.isnan(stacked).all(axis=1), np.nan,
                             np.nanmax(np.where(np.isnan(stacked), -np.inf, stacked), axis=1))
    if sort_by == "B":
        return -columns["lods"]
    if sort_by == "mean":
        return -columns["mean"]
    return None


def adjust_and_order(p: NDArray[np.float64], key: NDArray[np.float64] | None, adjust: str,
                     sort_by: str) -> tuple[NDArray[np.floating], NDArray[np.intp] | None]:
    """The global step: adjusted p-values over all features, and the table's row order.

    Holds the p-values, their order and the adjusted values (about 48 bytes per feature at the
    peak, plus 16 for another sort key). Ties, and NaN (last), keep row order, as R's ``order``.
    """
    by_p = stable_argsort(p)
    adjusted = adjust_in_order(p, adjust, by_p)
    if sort_by == "p":
        return adjusted, by_p
    del by_p
    if sort_by == "none" or key is None:
        return adjusted, None
    return adjusted, stable_argsort(key)


SORT_KEY_FIELD = "sort key"


def finish_table(results: FeatureStore, ids: IdStore | None, *, columns: list[str],
                 adjust: str, sort_by: str, out: str | os.PathLike[str] | None, collect: bool,
                 temp_dir: Path | None, block_rows: int) -> pd.DataFrame | None:
    """The global step and the output: adjust all p-values, order the rows, write or collect.

    ``results`` holds every column of ``columns`` but ``adj_p_value`` (added here), and the
    sort key as :data:`SORT_KEY_FIELD` when sorting by something else than p. Returns the
    table when ``collect``, else writes it to ``out`` and returns None.
    """
    key = results.read_all(SORT_KEY_FIELD) if sort_by not in ("p", "none") else None
    adjusted, order = adjust_and_order(results.read_all("p_value"), key, adjust, sort_by)
    del key
    results.add("adj_p_value")
    results.write("adj_p_value", 0, adjusted)
    del adjusted
    if collect:
        return collect_table(results, columns, ids, order, block_rows)
    with open_table(out, special_characters=ids.special if ids is not None else set(),
                    temp_dir=temp_dir) as writer:
        write_table_blocks(writer, results, columns, ids, order, block_rows)
    return None
