"""The rows of a table as delimited text, formatted in compiled code, in parallel.

Writing a results table as TSV or CSV is mostly turning doubles into text. Arrow's CSV writer
does that at about 100 ns a value in one thread per call; :func:`format_rows` does it with
:mod:`manylm.io.number_text` (about 40 ns a value, lines included) in a compiled loop that
releases the GIL, so row ranges are formatted on several cores at once. Each kind of column
(float, integer, text) is passed as one matrix, so the formatter is compiled once whatever the
table's columns. The bytes are those of Arrow's writer with ``quoting_style="none"`` and
``null_string="NA"`` (the same number text, ``\\n`` line ends), so either writer can produce
any part of a table.

Columns of float64, integer types and text without nulls are formatted here; a table with any
other column (booleans, float32, dictionaries, nullable integers with missing values) gives
None and the caller uses Arrow's writer. A NaN is written ``NA`` like a null: manylm's tables
hold missing values as NaN.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numba
import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from manylm.io.byte_words import load_word, store_word
from manylm.io.number_text import (
    MAX_FLOAT_CHARS,
    MAX_INT_CHARS,
    shortest_decimal,
    write_decimal,
    write_float,
    write_int,
)

__all__ = ["format_rows"]

_FLOAT, _INT, _TEXT = 0, 1, 2
#: Rows formatted per task when a table is split among threads.
ROWS_PER_TASK = 1 << 16
#: Rows whose floats are made decimals before their lines are written (a few kB of them).
DECIMALS_PER_GROUP = 256
#: Bytes a text copy may write past the text's end (eight at a time).
_WORD_SLACK = 8
_NA = np.frombuffer(b"NA", dtype=np.uint8)


class _Columns:
    """A table's columns as the compiled formatter reads them: float64 (as their bits), int64,
    and text (offsets into one byte buffer); each output column's kind and place among its
    kind. :meth:`rows` stacks a row range of each kind into one matrix (a copy of that range:
    one compiled signature whatever the number of columns)."""

    def __init__(self, columns: list[Any]) -> None:
        kinds: list[int] = []
        places: list[int] = []
        self.floats: list[NDArray[np.int64]] = []
        self.ints: list[NDArray[np.int64]] = []
        self.offsets: list[NDArray[np.int64]] = []
        texts: list[NDArray[np.uint8]] = []
        text_bytes = 0
        for column in columns:
            if isinstance(column, pa.ChunkedArray):
                column = _combined(column)
            kind = _kind(column)
            if kind is None:
                raise _Unsupported
            kinds.append(kind)
            if kind == _FLOAT:
                places.append(len(self.floats))
                self.floats.append(np.ascontiguousarray(_as_numpy(column)).view(np.int64))
            elif kind == _INT:
                places.append(len(self.ints))
                self.ints.append(np.ascontiguousarray(_as_numpy(column), dtype=np.int64))
            else:
                places.append(len(self.offsets))
                offsets, text = _text_buffers(column)
                # several text columns share one buffer (a copy); one is used where it lies
                self.offsets.append(offsets + text_bytes if text_bytes else offsets)
                texts.append(text)
                text_bytes += text.shape[0]
        self.kinds = np.array(kinds, dtype=np.int64)
        self.places = np.array(places, dtype=np.int64)
        data = texts[0] if len(texts) == 1 else np.concatenate(texts) if texts else np.empty(
            0, dtype=np.uint8)
        self.data = data.view()
        self.data.flags.writeable = False  # one type for numba, whether Arrow's or a copy
        self.bytes_per_row = (len(kinds) + 1 + MAX_FLOAT_CHARS * len(self.floats)
                              + MAX_INT_CHARS * len(self.ints))

    def rows(self, start: int, stop: int) -> tuple[NDArray[np.int64], NDArray[np.int64],
                                                    NDArray[np.int64], int]:
        """Rows ``start:stop``: float bits, integers and text offsets (one more), a row of
        each column, and the bytes their formatting may use (an upper bound on their text,
        and room for the words a text copy writes past its end)."""
        m = stop - start
        floats = (np.stack([f[start:stop] for f in self.floats]) if self.floats
                  else np.empty((0, m), dtype=np.int64))
        ints = (np.stack([v[start:stop] for v in self.ints]) if self.ints
                else np.empty((0, m), dtype=np.int64))
        offsets = (np.stack([o[start:stop + 1] for o in self.offsets]) if self.offsets
                   else np.zeros((0, m + 1), dtype=np.int64))
        text = int((offsets[:, -1] - offsets[:, 0]).sum())
        return floats, ints, offsets, text + self.bytes_per_row * m + _WORD_SLACK


def _combined(column: pa.ChunkedArray) -> pa.Array:
    """One array of a chunked column (text as ``large_string``: more than 2 GiB of it does not
    fit 32-bit offsets)."""
    if column.num_chunks == 1:
        return column.chunk(0)  # as it lies (combining would copy it)
    if pa.types.is_string(column.type):
        column = column.cast(pa.large_string())
    return column.combine_chunks()


def _text_buffers(array: pa.Array) -> tuple[NDArray[np.int64], NDArray[np.uint8]]:
    """A text array's offsets (int64, into the bytes) and bytes, without copies."""
    text = array.cast(pa.large_string())
    n = len(text)
    buffers = text.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64)[text.offset:text.offset + n + 1]
    data = (np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None
            else np.empty(0, dtype=np.uint8))
    return offsets, data


class _Unsupported(Exception):
    """A column this module does not format (the caller falls back to Arrow's writer)."""


def _as_numpy(column: pa.Array | NDArray[Any]) -> NDArray[Any]:
    """Numbers as a NumPy vector (an Arrow float64 null as NaN)."""
    if isinstance(column, np.ndarray):
        return column
    return column.to_numpy(zero_copy_only=False)


def _kind(array: pa.Array | NDArray[Any]) -> int | None:
    if isinstance(array, np.ndarray):
        if array.ndim != 1:
            return None
        if array.dtype == np.float64:
            return _FLOAT
        if array.dtype.kind in "iu" and array.dtype != np.uint64:
            return _INT
        return None
    kind = array.type
    if pa.types.is_float64(kind):
        return _FLOAT
    if pa.types.is_integer(kind) and array.null_count == 0 and not pa.types.is_uint64(kind):
        return _INT
    if (pa.types.is_string(kind) or pa.types.is_large_string(kind)) and array.null_count == 0:
        return _TEXT
    return None


@numba.njit(nogil=True, cache=True)
def _shortest_decimals(float_bits: NDArray[np.int64], first: int, last: int,
                       digits: NDArray[np.int64], exponents: NDArray[np.int64]) -> None:
    """Rows ``first:last`` of each float column as ``digits x 10^exponent`` (Ryū), into
    ``digits[:, :last - first]`` and ``exponents``; digits 0 where :func:`_format_rows`
    writes the value otherwise (zero, infinity, NaN, or equal to the value above).

    A loop of its own: the values are independent, so the processor works on several at
    once, which it cannot while each value's text must wait for the previous one's length.
    """
    for f in range(float_bits.shape[0]):
        for i in range(first, last):
            bits = float_bits[f, i]
            exponent_bits = (bits >> 52) & 0x7FF
            mantissa_bits = bits & 0xFFFFFFFFFFFFF
            if exponent_bits == 0x7FF or (exponent_bits == 0 and mantissa_bits == 0) or (
                    i > 0 and bits == float_bits[f, i - 1]):
                digits[f, i - first] = 0
            else:
                digits[f, i - first], exponents[f, i - first] = shortest_decimal(
                    mantissa_bits, exponent_bits)


@numba.njit(nogil=True, cache=True)
def _format_rows(kinds: NDArray[np.int64], places: NDArray[np.int64],
                 float_bits: NDArray[np.int64], ints: NDArray[np.int64],
                 offsets: NDArray[np.int64], data: NDArray[np.uint8], delimiter: int,
                 n_rows: int, out: NDArray[np.uint8]) -> int:
    """``n_rows`` rows (a column per row of ``float_bits``, ``ints`` and ``offsets``) as
    delimited lines into ``out``; the number of bytes written.

    The rows go in groups of :data:`DECIMALS_PER_GROUP`: the group's floats are made decimals
    first (:func:`_shortest_decimals`), then its lines written. A float equal to the one above
    it in its column is copied from that one's text (adjusted p-values sorted by p are mostly
    runs of one value). Text is copied eight bytes at a time where the data has them (the
    buffer has room for the bytes past a text's end: :meth:`_Columns.rows`)."""
    na = _NA
    position = 0
    columns = kinds.shape[0]
    n_floats = float_bits.shape[0]
    n_data = data.shape[0]
    previous_start = np.full(n_floats, -1, dtype=np.int64)  # the text of each column's last
    previous_stop = np.zeros(n_floats, dtype=np.int64)
    digits = np.empty((n_floats, DECIMALS_PER_GROUP), dtype=np.int64)
    exponents = np.empty((n_floats, DECIMALS_PER_GROUP), dtype=np.int64)
    for first in range(0, n_rows, DECIMALS_PER_GROUP):
        last = min(n_rows, first + DECIMALS_PER_GROUP)
        _shortest_decimals(float_bits, first, last, digits, exponents)
        for i in range(first, last):
            for c in range(columns):
                if c > 0:
                    out[position] = delimiter
                    position += 1
                place = places[c]
                kind = kinds[c]
                if kind == _FLOAT:
                    bits = float_bits[place, i]
                    start = position
                    if digits[place, i - first] != 0:
                        if bits < 0:
                            out[position] = 45  # '-'
                            position += 1
                        position = write_decimal(out, position, digits[place, i - first],
                                                 exponents[place, i - first])
                    elif i > 0 and bits == float_bits[place, i - 1] and previous_start[place] >= 0:
                        for j in range(previous_start[place], previous_stop[place]):
                            out[position] = out[j]
                            position += 1
                    elif (bits & 0x7FF0000000000000) == 0x7FF0000000000000 and (
                            bits & 0xFFFFFFFFFFFFF) != 0:
                        out[position] = na[0]
                        out[position + 1] = na[1]
                        position += 2
                    else:
                        position = write_float(out, position, bits)
                    previous_start[place] = start
                    previous_stop[place] = position
                elif kind == _INT:
                    position = write_int(out, position, ints[place, i])
                else:
                    begin = offsets[place, i]
                    end = offsets[place, i + 1]
                    if end + 8 <= n_data:
                        for j in range(begin, end, 8):
                            store_word(out, position + j - begin, load_word(data, j))
                        position += end - begin
                    else:
                        for j in range(begin, end):
                            out[position] = data[j]
                            position += 1
            out[position] = 10
            position += 1
    return position


def format_rows(columns: list[Any], delimiter: str, *,
                threads: int = 1) -> Iterator[memoryview] | None:
    """Rows of columns as delimited text (no header, no quoting): pieces to write one after
    the other, made as they are taken (a few ahead on ``threads`` threads, so the text held is
    a few pieces of 64k rows whatever the table's size); None when some column's type is not
    formatted here.

    Parameters
    ----------
    columns : list of NumPy vectors or Arrow arrays
        The columns, of one length. The caller has checked that nothing needs quoting (no
        delimiter, double quote or line break in any text).
    delimiter : str
        One ASCII character.
    threads : int, default 1
        Format row ranges on this many threads at once.
    """
    try:
        formatter = _Columns(columns)
    except _Unsupported:
        return None
    n = len(columns[0]) if columns else 0
    bounds = [*range(0, n, ROWS_PER_TASK), n]
    return _pieces(formatter, ord(delimiter), bounds, threads)


def _pieces(formatter: _Columns, delimiter: int, bounds: list[int],
            threads: int) -> Iterator[memoryview]:
    def piece(k: int) -> memoryview:
        start, stop = bounds[k], bounds[k + 1]
        floats, ints, offsets, size = formatter.rows(start, stop)
        out = np.empty(size, dtype=np.uint8)
        end = _format_rows(formatter.kinds, formatter.places, floats, ints, offsets,
                           formatter.data, delimiter, stop - start, out)
        return memoryview(out[:end].data)

    tasks = range(len(bounds) - 1)
    if threads <= 1 or len(tasks) <= 1:
        yield from (piece(k) for k in tasks)
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending: collections.deque[Future[memoryview]] = collections.deque()
        try:
            for k in tasks:
                pending.append(pool.submit(piece, k))
                if len(pending) > threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
