"""Writing the results table block by block, in file order or sorted, never half-written.

The table rows are computed chunk by chunk and kept (in memory or spilled) with the adjusted
p-values; this module writes them out in blocks: in row order (``sort_by="none"``), or in the
order of the sort key. Sorting needs the key's order of all features in memory (one int64 per
feature, 80 MB for 10^7 features). A spilled table is sorted in place, one column at a time
(each read whole, permuted in memory and written back over its own file), when that and the
feature IDs fit in what the plan reserves per feature for the global steps, over by then; the
blocks are then read in file order and the IDs taken from memory. Otherwise its rows are
distributed to one file per output block in one sequential pass, then each block is sorted
(about 100 more bytes per feature written and read once). Either way there are no random reads
from the spill files, whatever the size. Worker threads fetch and format the blocks (the
number formatting is most of the cost) while one thread writes them in order, releasing the
page cache of what is written (:class:`~manylm.io.page_cache.CacheReleasingFile`).

The text and Parquet output is the same as :func:`manylm.io.write_table` writes for the
in-memory table (the bytes of Arrow's CSV writer, by :mod:`manylm.io.delimited_rows` when
nothing is quoted; the same quoting rule, ``NA`` for missing values, the same Parquet
options). A file is written under a temporary name (in the run's spill directory
when it is on the same file system, else beside the target) and renamed onto the target when
complete.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import io
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, NamedTuple, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from numpy.typing import NDArray

from manylm.engine.plan import PER_FEATURE_BYTES
from manylm.engine.spill import FeatureStore, IdStore, disk_full_as_error
from manylm.inference.adjust import adjust_sorted
from manylm.inference.ordering import stable_argsort
from manylm.interruptions import raise_if_interrupted
from manylm.io.atomic import atomic_path, commit_file
from manylm.io.delimited_rows import format_rows
from manylm.io.tables import (
    check_table_path,
    opened_table_file,
    parquet_write_options,
    write_csv_header,
)
from manylm.parallel import cpu_count

__all__ = ["SORT_KEY_FIELD", "Block", "GlobalOrder", "TableWriter", "adjust_and_order",
           "collect_table", "finish_table", "open_table", "output_ids", "sort_fields_in_place",
           "sort_key", "sortable_in_place", "store_in_output_order", "write_block_rows",
           "write_blocks", "write_table_blocks"]

ID_COLUMN = "feature"
#: Rows per written block: formatted text is ~130 bytes per row, a few blocks are in flight.
WRITE_BLOCK_ROWS = 1 << 18
#: At most this many output blocks (files) when a spilled table is sorted.
MAX_BUCKETS = 256
#: Bytes per feature the write phase may hold (the order, IDs, a sorted column): what every
#: plan reserves for the global steps (prior, p-value adjustment), which are over by then.
WRITE_BYTES_PER_FEATURE = PER_FEATURE_BYTES[(False, False)]


class PreparedBlock(NamedTuple):
    """A block ready to append: its rows and column names, and the Arrow table (Parquet) or
    the formatted lines in pieces (text)."""

    rows: int
    names: list[str]
    table: pa.Table | None
    text: list[memoryview]


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
                columns: dict[str, NDArray[Any]]) -> PreparedBlock:
        """A block as an Arrow table (Parquet) or as its formatted lines (text); thread-safe."""
        names = [ID_COLUMN, *columns]
        if self._format.name == "parquet":
            id_array = pa.array(ids, type=pa.int64()) if isinstance(ids, np.ndarray) else (
                ids.cast(pa.string()))
            arrays = [id_array] + [pa.array(v, from_pandas=True) for v in columns.values()]
            return PreparedBlock(len(id_array), names, pa.Table.from_arrays(arrays, names=names),
                                 [])
        options = self._options(names, header=False)
        if options.quoting_style == "none":
            lines = format_rows([ids, *columns.values()], options.delimiter)
            if lines is not None:
                return PreparedBlock(len(ids), names, None, list(lines))
        id_array = pa.array(ids, type=pa.int64()) if isinstance(ids, np.ndarray) else ids
        arrays = [id_array] + [pa.array(v, from_pandas=True) for v in columns.values()]
        text = io.BytesIO()
        pacsv.write_csv(pa.Table.from_arrays(arrays, names=names), text, options)
        return PreparedBlock(len(ids), names, None, [text.getbuffer()])

    def append(self, prepared: PreparedBlock) -> None:
        """Write a prepared block after the previous ones."""
        if self._format.name == "parquet":
            table = prepared.table
            assert table is not None
            if self._parquet is None:
                import pyarrow.parquet as pq

                self._parquet = pq.ParquetWriter(self._sink, table.schema,
                                                 **parquet_write_options(table.schema))
            self._parquet.write_table(table)
        else:
            assert not isinstance(self._sink, (str, os.PathLike))
            if not self._header_written:
                write_csv_header(self._sink, prepared.names,
                                 self._options(prepared.names, header=True))
                self._header_written = True
            for piece in prepared.text:
                self._sink.write(piece)
        self.rows += prepared.rows

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

    The file is moved onto ``out`` only when the block exits normally (within
    :func:`~manylm.io.atomic.committed_together`, with the command's other files at its end);
    on any error (or Ctrl-C) the partial file is deleted and ``out`` is left as it was.

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
                with opened_table_file(temporary, fmt) as sink:
                    writer = TableWriter(sink, fmt, quote)
                    yield writer
                    writer.close()
                raise_if_interrupted()  # a Ctrl-C lost in a finaliser still stops here
                commit_file(temporary, target)
        finally:
            with contextlib.suppress(OSError):
                temporary.unlink()
        return
    with disk_full_as_error(label), atomic_path(target) as temporary_path, \
            opened_table_file(temporary_path, fmt) as sink:
        writer = TableWriter(sink, fmt, quote)
        yield writer
        writer.close()
        raise_if_interrupted()


def _same_device(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


Block = tuple[pa.Array | NDArray[np.int64], dict[str, NDArray[np.float64]]]


def _block_fetchers(results: FeatureStore, names: list[str], ids: IdStore | None,
                    order: NDArray[np.intp] | None, block_rows: int, *,
                    values_in_order: bool = False) -> Iterator[Callable[[], Block]]:
    """The table's rows in blocks, as functions that each return one ``(ids, {column: values})``.

    A block is fetched by the thread that formats it (reads, gathers and ``take`` release the
    GIL), so that the writing thread only writes. ``values_in_order``: the stored columns are
    already in output order (:func:`sort_fields_in_place`), only the IDs follow ``order``.
    A spilled table not sorted in place goes through :func:`_bucketed` (in this thread).
    """
    n_rows = results.n_rows
    if order is not None and results.spilled and not values_in_order:
        for block in _bucketed(results, names, ids, order, block_rows):
            yield functools.partial(_given, block)
        return
    whole_ids = None
    if values_in_order and ids is not None and ids.spilled:
        # Sorting in place checked that the IDs fit (sortable_in_place): one sequential read
        # instead of mapping the ID files for every block.
        whole_ids = ids.read(0, n_rows)
    for start in range(0, n_rows, block_rows):
        stop = min(n_rows, start + block_rows)
        yield functools.partial(_fetch, results, names, ids, whole_ids, order, start, stop,
                                values_in_order)


def _given(block: Block) -> Block:
    return block


def _fetch(results: FeatureStore, names: list[str], ids: IdStore | None,
           whole_ids: pa.Array | None, order: NDArray[np.intp] | None, start: int, stop: int,
           values_in_order: bool) -> Block:
    """Rows ``start:stop`` of the output (see :func:`_block_fetchers`)."""
    rows = None if order is None else order[start:stop]
    if rows is None or values_in_order:
        columns = {name: results.read(name, start, stop) for name in names}
    else:
        columns = {name: results.gather(name, rows) for name in names}
    if rows is None:
        return (np.arange(start, stop, dtype=np.int64) if ids is None
                else ids.read(start, stop)), columns
    return output_ids(ids, whole_ids, rows), columns


def output_ids(ids: IdStore | None, whole_ids: pa.Array | None,
               rows: NDArray[np.intp]) -> pa.Array | NDArray[np.int64]:
    """The IDs of stored rows ``rows`` (row numbers when the features have none), taken from
    ``whole_ids`` (every ID, read once) when given, else gathered from the store."""
    if ids is None:
        return rows.astype(np.int64)
    if whole_ids is not None:
        return whole_ids.take(pa.array(rows, type=pa.int64()))
    return ids.gather(rows)


def _sort_threads(n_threads: int) -> int:
    """Threads that permute columns at once: each holds a column and its permuted copy."""
    return max(1, min(n_threads, (WRITE_BYTES_PER_FEATURE - 16) // 16))


def sortable_in_place(results: FeatureStore, ids: IdStore | None) -> bool:
    """Whether sorting a spilled table in place stays within the global steps' memory.

    Every plan reserves :data:`WRITE_BYTES_PER_FEATURE` per feature for the global steps
    (prior, adjustment), free again when the table is written. Sorting in place holds the
    order and the adjusted p-values (8 bytes per feature each), then a column and its permuted
    copy per thread (16, :func:`_sort_threads` keeps them within the reserve), and while
    writing the order and every feature's ID: the IDs decide.
    """
    n = results.n_rows
    ids_bytes = ids.nbytes if ids is not None else 0
    return 8 * n + ids_bytes <= WRITE_BYTES_PER_FEATURE * n


def sort_fields_in_place(results: FeatureStore, names: list[str],
                          order: NDArray[np.intp], n_threads: int,
                          spare: Sequence[NDArray[np.floating]] = ()) -> None:
    """Put each stored column of a spilled table in output order, overwriting its file.

    One column at a time per thread (:func:`_sort_threads` of them): gathered in output order
    from a mapping of its file (:meth:`FeatureStore.permute`), written back over the same
    pages. No other file is made; the blocks are then read in file order. (The bucket sort of
    :func:`_bucketed` writes and reads every row through one more set of files, with the IDs.)
    A thread permutes every column it takes into the same array, a ``spare`` one first
    (float64 vectors of the table's length that the caller no longer needs): memory used
    before costs less than new memory, whose first use is a page fault per page (1-2.5 s per
    GB where the host takes back idle guest memory).
    """
    buffers = threading.local()
    unused = [cast(NDArray[np.float64], a) for a in spare
              if a.shape == order.shape and a.dtype == np.float64 and a.flags.c_contiguous
              and a.flags.writeable]
    lock = threading.Lock()

    def buffer() -> NDArray[np.float64]:
        with lock:
            return unused.pop() if unused else np.empty(order.shape)

    def permute(name: str) -> None:
        if not hasattr(buffers, "permuted"):
            buffers.permuted = buffer()
        results.permute(name, order, buffers.permuted)

    with ThreadPoolExecutor(max(1, min(_sort_threads(n_threads), len(names))),
                            thread_name_prefix="manylm-sort") as pool:
        for done in pool.map(permute, names):  # re-raises a thread's error here
            del done


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
                       n_threads: int | None = None, *, values_in_order: bool = False) -> None:
    """Write every row of ``results`` (columns ``names``) through ``writer``
    (:func:`write_blocks`, in blocks of :func:`write_block_rows`).

    Parameters
    ----------
    ids : IdStore or None
        Feature IDs; None writes row numbers (features known by position).
    order : int array of shape (n_features,), optional
        Rows in output order (None: row order).
    values_in_order : bool
        The stored columns are already in output order (only the IDs follow ``order``).
    """
    n_threads = max(1, n_threads or cpu_count())
    fetchers = _block_fetchers(results, names, ids, order, write_block_rows(block_rows, n_threads),
                               values_in_order=values_in_order)
    write_blocks(writer, fetchers, n_threads)


def write_block_rows(block_rows: int, n_threads: int) -> int:
    """Rows per block written by :func:`write_blocks` on ``n_threads``: smaller than
    ``block_rows`` in proportion, so that the blocks in memory stay as many rows as three of
    ``block_rows``."""
    return max(1, min(block_rows, WRITE_BLOCK_ROWS) * 3 // (n_threads + 2))


def write_blocks(writer: TableWriter, fetchers: Iterable[Callable[[], Block]],
                 n_threads: int) -> None:
    """Fetch, format and write blocks in order: each fetched and formatted by one of
    ``n_threads`` threads, a few blocks ahead, and written in order by this one (one more
    block than threads is in flight, so that the threads keep formatting while this one
    writes)."""
    window = n_threads + 1
    with ThreadPoolExecutor(n_threads, thread_name_prefix="manylm-write") as pool:
        pending: collections.deque[Future[Any]] = collections.deque()
        try:
            for fetch in fetchers:
                pending.append(pool.submit(_fetch_and_prepare, writer, fetch))
                if len(pending) >= window:
                    writer.append(pending.popleft().result())
            while pending:
                writer.append(pending.popleft().result())
        finally:
            for future in pending:
                future.cancel()


def _fetch_and_prepare(writer: TableWriter, fetch: Callable[[], Block]) -> PreparedBlock:
    return writer.prepare(*fetch())


def collect_table(results: FeatureStore, names: list[str], ids: IdStore | None,
                  order: NDArray[np.intp] | None, block_rows: int, *,
                  values_in_order: bool = False) -> pd.DataFrame:
    """The whole table as a DataFrame indexed by feature, as :func:`manylm.top_table` returns."""
    parts = [fetch() for fetch in _block_fetchers(results, names, ids, order, block_rows,
                                                  values_in_order=values_in_order)]
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


class GlobalOrder(NamedTuple):
    """What :func:`adjust_and_order` gives: the adjusted p-values, the table's row order (None:
    row order) and, when made on the way, the p-values in that order."""

    adjusted: NDArray[np.floating]
    order: NDArray[np.intp] | None
    p_in_order: NDArray[np.float64] | None = None


def adjust_and_order(p: NDArray[np.float64], key: NDArray[np.float64] | None, adjust: str,
                     sort_by: str, *, in_output_order: bool = False,
                     p_is_scratch: bool = False) -> GlobalOrder:
    """The global step: adjusted p-values over all features, and the table's row order.

    The adjusted p-values come in row order, or in the table's order when
    ``in_output_order`` (for a table sorted by p they are made in that order: no scatter to
    row order and gather back, and the p-values in that order come too). Holds the p-values,
    their order and the adjusted values (about 48 bytes per feature at the peak, plus 16 for
    another sort key). Ties, and NaN (last), keep row order, as R's ``order``.
    ``p_is_scratch``: ``p`` (float64, C-contiguous) may be overwritten once sorted (it then
    holds the adjusted p-values in p order): memory reused.
    """
    spare: list[NDArray[np.float64]] = []
    by_p = stable_argsort(p, spare=spare)
    p_in_order = (np.take(p, by_p, out=spare.pop(), mode="clip") if spare  # "raise": buffered
                  else p[by_p])
    del spare
    in_p_order = adjust_sorted(p_in_order, adjust, out=p if p_is_scratch else None)
    if sort_by == "p" and in_output_order:
        return GlobalOrder(in_p_order, by_p, p_in_order)
    del p_in_order
    adjusted = np.empty(p.shape)
    adjusted[by_p] = in_p_order
    del in_p_order
    if sort_by == "p":
        return GlobalOrder(adjusted, by_p)
    del by_p
    if sort_by == "none" or key is None:
        return GlobalOrder(adjusted, None)
    order = stable_argsort(key)
    return GlobalOrder(adjusted[order] if in_output_order else adjusted, order)


def store_in_output_order(results: FeatureStore, global_order: GlobalOrder,
                          p: NDArray[np.float64], fields: FeatureStore, names: list[str],
                          n_threads: int) -> None:
    """After :func:`adjust_and_order` with ``in_output_order``: write the adjusted p-values
    (and the p-values in output order, when it made them) into ``results``, then sort fields
    ``names`` of ``fields`` in place into output order (:func:`sort_fields_in_place`). The
    p-value arrays, written or not needed any more (``p`` too), are the sort's buffers: the
    caller does not use them after."""
    adjusted, order, p_in_order = global_order
    assert order is not None
    results.write("adj_p_value", 0, adjusted)
    spare = [adjusted]
    if p_in_order is not None:
        results.write("p_value", 0, p_in_order)
        spare.append(p_in_order)
    if not any(np.may_share_memory(p, a) for a in spare):  # not holding them already
        spare.append(p)
    sort_fields_in_place(fields, names, order, n_threads, spare)


SORT_KEY_FIELD = "sort key"


def finish_table(results: FeatureStore, ids: IdStore | None, *, columns: list[str],
                 adjust: str, sort_by: str, out: str | os.PathLike[str] | None, collect: bool,
                 temp_dir: Path | None, block_rows: int) -> pd.DataFrame | None:
    """The global step and the output: adjust all p-values, order the rows, write or collect.

    ``results`` holds every column of ``columns`` but ``adj_p_value`` (added here), and the
    sort key as :data:`SORT_KEY_FIELD` when sorting by something else than p. Returns the
    table when ``collect``, else writes it to ``out`` and returns None. A spilled table may be
    left sorted (its fields in output order): it is read once.
    """
    key = results.read_all(SORT_KEY_FIELD) if sort_by not in ("p", "none") else None
    in_place = (sort_by != "none" and results.spilled and sortable_in_place(results, ids))
    p = results.read_all("p_value")
    global_order = adjust_and_order(p, key, adjust, sort_by, in_output_order=in_place,
                                    p_is_scratch=results.spilled)
    del key
    order = global_order.order
    results.add("adj_p_value")
    n_threads = cpu_count()
    in_place = in_place and order is not None
    if in_place:
        to_sort = [c for c in columns if c != "adj_p_value"]
        if global_order.p_in_order is not None:  # made in output order by the adjustment
            to_sort.remove("p_value")
        store_in_output_order(results, global_order, p, results, to_sort, n_threads)
    else:
        results.write("adj_p_value", 0, global_order.adjusted)
    del global_order, p
    if collect:
        return collect_table(results, columns, ids, order, block_rows, values_in_order=in_place)
    with open_table(out, special_characters=ids.special if ids is not None else set(),
                    temp_dir=temp_dir) as writer:
        write_table_blocks(writer, results, columns, ids, order, block_rows, n_threads,
                           values_in_order=in_place)
    return None
