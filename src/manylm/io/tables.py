"""Writing result tables: TSV, CSV (optionally gzip-compressed), Parquet or standard output.

Text is written in the bytes of ``pyarrow.csv`` when the frame converts cleanly to Arrow
(floats in their shortest round-trip form): by :mod:`manylm.io.delimited_rows` on every core
when nothing needs quoting and every column is text or numbers, else by Arrow's writer;
otherwise by :meth:`pandas.DataFrame.to_csv` (whose default float formatting also
round-trips). Missing values are written as ``NA``. Large files are written without keeping
them whole in the page cache (:mod:`manylm.io.page_cache`).
Files are written atomically (see :func:`manylm.io.atomic_path`).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import sys
from collections.abc import Iterator
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from manylm.errors import InputError
from manylm.io.atomic import atomic_path
from manylm.io.delimited_rows import format_rows
from manylm.io.formats import TABLE_SUFFIXES, FileFormat, detect_format
from manylm.io.page_cache import CacheReleasingFile
from manylm.parallel import cpu_count

__all__ = ["check_table_path", "opened_table_file", "parquet_write_options", "write_csv_header",
           "write_table"]

_NA = "NA"
_GZIP_LEVEL = 1  # numeric text: level 6 is ~7% smaller but ~6x slower
_STDOUT = FileFormat("tsv", "\t")


def check_table_path(path: str | os.PathLike[str] | None) -> FileFormat:
    """Check early that a table can be written to ``path``, and tell its format.

    Call this before a long computation so that a misspelt output name fails at once.

    Parameters
    ----------
    path : str, path-like or None
        The output file; ``None`` or ``"-"`` means standard output (TSV).

    Returns
    -------
    FileFormat
        The format :func:`write_table` will use.

    Raises
    ------
    InputError
        If the suffix is not supported (the message lists the supported ones), the directory
        does not exist, or ``path`` is a directory.
    """
    if path is None or os.fspath(path) == "-":
        return _STDOUT
    if os.path.isdir(path):
        raise InputError(f"{os.fspath(path)}: is a directory; give a file name to write to")
    fmt = detect_format(path, TABLE_SUFFIXES, what="output table")
    parent = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(parent):
        problem = "is a file, not a directory" if os.path.exists(parent) else "does not exist"
        raise InputError(
            f"{os.fspath(path)}: cannot write the table: {parent!r} {problem}; give a path in "
            f"an existing directory"
        )
    return fmt


def write_table(
    df: pd.DataFrame, path: str | os.PathLike[str] | None, *, index: bool = False
) -> None:
    """Write a table to a file, by suffix, or to standard output.

    Parameters
    ----------
    df : pandas.DataFrame
        The table.
    path : str, path-like or None
        ``.tsv``, ``.txt``, ``.tab`` (tab-separated), ``.csv`` (comma-separated), each
        optionally followed by ``.gz``, or ``.parquet`` (Snappy-compressed). ``None`` or ``"-"``
        writes TSV to standard output. Files are replaced atomically.
    index : bool, default False
        Whether to write the index as the first column(s) (named after the index, or
        ``"index"`` if it has no name).

    Raises
    ------
    InputError
        As :func:`check_table_path`.

    Notes
    -----
    In text, floats are written with full round-trip precision (reading them back gives the
    same float64 values) and missing values as ``NA``. Strings are quoted only if some string
    contains the delimiter, a double quote or a line break.
    """
    fmt = check_table_path(path)
    if index:
        df = df.reset_index()
    if path is None or os.fspath(path) == "-":
        _write_stdout(df)
        return
    with atomic_path(path) as tmp:
        if fmt.name == "parquet":
            _write_parquet(df, tmp, fmt)
        else:
            _write_text_file(df, tmp, fmt)


def parquet_write_options(schema: pa.Schema) -> dict[str, Any]:
    """How every manylm table is written to Parquet (``pyarrow.parquet.ParquetWriter`` options).

    Snappy-compressed (the codec every Parquet reader knows; results tables are mostly
    distinct doubles: 10^7 rows x 8 float64 and IDs take 705 MB in 1.9 s, against 637 MB in
    2.3 s with zstd, the writer's time being the serial end of a streamed run); dictionary
    encoding only for the text columns after the first (the first holds the feature IDs, each
    different). A column of distinct floating-point values fills a dictionary page, falls back
    to plain encoding, and costs three times the plain write (6.7 s against 2.2 s above).

    Column statistics (each row group's minimum and maximum) only for the p-value columns
    (:data:`STATISTICS_COLUMNS`): a table sorted by p holds them in order, so a reader that
    filters on them (``adj_p_value < 0.05``) skips whole row groups. The other columns are in
    no order, every row group spans their range, and their statistics would cost the serial
    writer 0.25 s in 10^7 rows for nothing.
    """
    text = [f.name for f in list(schema)[1:]
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            or pa.types.is_dictionary(f.type)]
    return {"compression": "snappy", "use_dictionary": text,
            "write_statistics": [f.name for f in schema if f.name in STATISTICS_COLUMNS]}


#: The columns of a results table whose Parquet row groups carry statistics.
STATISTICS_COLUMNS = frozenset({"p_value", "adj_p_value"})


@contextlib.contextmanager
def opened_table_file(path: str | os.PathLike[str], fmt: FileFormat) -> Iterator[Any]:
    """``path`` opened to write a table in format ``fmt``: a binary sink, gzip-compressed for
    ``.gz`` (no name or time stamp in the header: the same table gives the same bytes), that
    releases the page cache of what it has written (:class:`CacheReleasingFile`)."""
    with open(path, "wb") as handle:
        sink = CacheReleasingFile(handle)
        if fmt.gzip:
            with gzip.GzipFile(filename="", mode="wb", fileobj=sink,
                               compresslevel=_GZIP_LEVEL, mtime=0) as compressed:
                yield compressed
        else:
            yield sink


def _write_parquet(df: pd.DataFrame, tmp: os.PathLike[str], fmt: FileFormat) -> None:
    if not all(isinstance(c, str) for c in df.columns):
        df = df.set_axis([str(c) for c in df.columns], axis=1)
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    with opened_table_file(tmp, fmt) as sink:
        pq.write_table(table, sink, **parquet_write_options(table.schema))


def _write_text_file(df: pd.DataFrame, tmp: os.PathLike[str], fmt: FileFormat) -> None:
    assert fmt.delimiter is not None
    with opened_table_file(tmp, fmt) as sink:
        _write_text(df, sink, fmt.delimiter)


def _write_stdout(df: pd.DataFrame) -> None:
    stdout = sys.stdout
    stdout.flush()
    buffer = getattr(stdout, "buffer", None)
    if buffer is not None:
        _write_text(df, buffer, "\t")
        buffer.flush()
    else:  # a text-only stream (e.g. replaced by a test harness)
        raw = io.BytesIO()
        _write_text(df, raw, "\t")
        stdout.write(raw.getvalue().decode("utf-8"))
        stdout.flush()


def _write_text(df: pd.DataFrame, sink: IO[bytes] | gzip.GzipFile | CacheReleasingFile,
                delimiter: str) -> None:
    table = _to_arrow(df)
    if table is None:
        text = df.to_csv(sep=delimiter, index=False, na_rep=_NA, lineterminator="\n")
        sink.write(text.encode("utf-8"))
        return
    quoting = "needed" if _needs_quotes(table, delimiter) else "none"
    options = pacsv.WriteOptions(
        delimiter=delimiter, null_string=_NA, quoting_style=quoting, quoting_header=quoting
    )
    lines = (format_rows(table.columns, delimiter, threads=cpu_count()) if quoting == "none"
             else None)
    if lines is None:
        pacsv.write_csv(table, sink, options)
        return
    write_csv_header(sink, table.column_names, options)
    for piece in lines:
        sink.write(piece)


def write_csv_header(sink: Any, names: list[str], options: pacsv.WriteOptions) -> None:
    """The header line Arrow's CSV writer gives a table with these column names (quoted as
    ``options`` say), for rows written by :mod:`manylm.io.delimited_rows`."""
    empty = [pa.array([], type=pa.null())] * len(names)
    pacsv.write_csv(pa.Table.from_arrays(empty, names=names), sink, options)


def _to_arrow(df: pd.DataFrame) -> pa.Table | None:
    """Convert to Arrow (NaN -> null) if every column has a plain type, else None."""
    names = [str(c) for c in df.columns]
    if len(set(names)) != len(names):
        return None
    for col in df.columns.unique():
        dtype = df[col].dtype
        if not (
            pd.api.types.is_numeric_dtype(dtype)
            or pd.api.types.is_bool_dtype(dtype)
            or pd.api.types.is_string_dtype(dtype)
        ):
            return None
    try:
        table = pa.Table.from_pandas(df.set_axis(names, axis=1), preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError):
        return None
    for field in table.schema:
        t = field.type
        if not (
            pa.types.is_integer(t)
            or pa.types.is_floating(t)
            or pa.types.is_string(t)
            or pa.types.is_large_string(t)
            or pa.types.is_null(t)
        ):
            return None  # booleans and others: let pandas format them as before
    return table


def _needs_quotes(table: pa.Table, delimiter: str) -> bool:
    special = f'[{delimiter}"\r\n]'
    if any(any(ch in name for ch in (delimiter, '"', "\r", "\n")) for name in table.column_names):
        return True
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            hit: Any = pc.any(pc.match_substring_regex(column, special))
            if hit.as_py():
                return True
    return False
