"""Parsing a text matrix (TSV/CSV, optionally gzipped) one block of rows at a time.

The same reading rules and checks as :func:`manylm.io.read_matrix` (header of sample IDs,
feature IDs as strings in the first column, ``NA`` / ``NaN`` / empty for missing, numbers only,
no infinite values), but streamed by ``pyarrow.csv.open_csv`` with the column types forced, so
that the memory used does not depend on the number of rows. Text can only be read in order, so
this is what ``manylm convert`` reads, not a :class:`~manylm.io.feature_blocks.FeatureBlockSource`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from manylm.errors import DataError, InputError
from manylm.io._matrix_checks import MISSING_VALUES, _check_is_file, _check_sample_ids
from manylm.io._text import peek_records, single_field_header_error, unreadable_text_error
from manylm.io._text_matrix import _first_unparsable, _parses
from manylm.io.formats import MATRIX_SUFFIXES, TEXT_MATRIX_SUFFIXES, detect_format

__all__ = ["TextMatrixStream", "check_blank_ids", "is_text_matrix"]

_BLOCK_SIZE = 8 << 20  # bytes of text parsed at a time
_KIND = "features x samples"


def is_text_matrix(path: Path) -> bool:
    """Whether the name is that of a text matrix (``.tsv``, ``.txt``, ``.tab``, ``.csv``, +gz)."""
    name = path.name.lower()
    return name.endswith(TEXT_MATRIX_SUFFIXES)


def check_blank_ids(ids: pa.Array, first_row: int, label: str) -> None:
    """Raise :class:`DataError` naming the first blank or missing feature ID of a block.

    ``first_row`` is the 0-based row of ``ids[0]`` in the file; the message gives 1-based
    data rows (the header not counted).
    """
    blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(ids), ""), True)
    if pc.any(blank).as_py():
        row = first_row + int(pc.indices_nonzero(blank)[0].as_py())
        raise DataError(
            f"{label}: data row {row + 1:,} has a blank feature ID; give every row an ID in "
            f"the first column or remove it"
        )


class TextMatrixStream:
    """Feature IDs and values of a text matrix, a parsed block of text at a time.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    dtype : numpy.dtype
        float32 or float64: the type the numbers are parsed to.

    Attributes
    ----------
    label : str
        The path, for messages.
    sample_ids : list of str
    dtype : numpy.dtype
    total : int
        Size of the file in bytes.
    done : int
        Bytes of the file read so far (compressed bytes for ``.gz``).

    Raises
    ------
    InputError
        As :func:`manylm.io.read_matrix` for a missing, empty or header-only file, or a header
        with no sample columns.
    DataError
        For blank or repeated sample IDs.
    """

    def __init__(self, path: Path, *, dtype: np.dtype) -> None:
        self.label = str(path)
        self.path = path
        _check_is_file(path, self.label, "matrix")
        self.format = detect_format(path, MATRIX_SUFFIXES, what="matrix")
        assert self.format.delimiter is not None
        self.sample_ids = _header_samples(path, self.format.delimiter, self.format.gzip,
                                          self.label)
        self.dtype = np.dtype(dtype)
        self.total = path.stat().st_size
        self.done = 0
        self._invalid_rows: list[Any] = []

    def _reader(self, value_type: pa.DataType, *, use_threads: bool = True) -> tuple[Any, Any]:
        names = [f"c{i}" for i in range(len(self.sample_ids) + 1)]
        types = {name: value_type for name in names[1:]}
        types[names[0]] = pa.string()
        raw = pa.OSFile(str(self.path))
        stream = pa.CompressedInputStream(raw, "gzip") if self.format.gzip else raw

        def remember(row: Any) -> str:
            self._invalid_rows.append(row)
            return "error"

        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1,
                                           block_size=_BLOCK_SIZE, use_threads=use_threads),
            parse_options=pacsv.ParseOptions(delimiter=self.format.delimiter,
                                              invalid_row_handler=remember),
            convert_options=pacsv.ConvertOptions(
                column_types=types, null_values=list(MISSING_VALUES),
                strings_can_be_null=value_type == pa.string(), quoted_strings_can_be_null=True,
            ),
        )
        return reader, raw

    def __iter__(self) -> Iterator[tuple[pa.Array, np.ndarray]]:
        """Yield ``(feature_ids, values)``: string IDs and values of shape (rows, samples)."""
        value_type = pa.float32() if self.dtype == np.float32 else pa.float64()
        row = 0
        raw = None
        try:
            reader, raw = self._reader(value_type)
            batches = iter(reader)
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                ids = batch.column(0)
                check_blank_ids(ids, row, self.label)
                values = np.stack([batch.column(j).to_numpy(zero_copy_only=False)
                                   for j in range(1, batch.num_columns)]).T
                self._reject_infinite(values, ids, row)
                row += batch.num_rows
                self.done = raw.tell()
                yield ids, values
        except pa.ArrowInvalid as error:
            self._explain(error, row)
        except (OSError, EOFError) as error:
            raise unreadable_text_error(self.label, error, self.format.gzip,
                                        _after(row)) from error
        finally:
            if raw is not None:
                raw.close()

    def _reject_infinite(self, values: np.ndarray, ids: pa.Array, first_row: int) -> None:
        if not (np.fmax.reduce(values, axis=None) == np.inf
                or np.fmin.reduce(values, axis=None) == -np.inf):
            return
        bad = np.isinf(values)
        row = int(np.argmax(bad.any(axis=1)))
        column = int(np.argmax(bad[row]))
        count = int(bad.sum())
        more = f" ({count - 1} more in the same block of rows)" if count > 1 else ""
        raise DataError(
            f"{self.label}: data row {first_row + row + 1:,}, feature {ids[row].as_py()!r}, "
            f"sample {self.sample_ids[column]!r}: value {values[row, column]} is infinite"
            f"{more}; values must be finite numbers: write NA for a missing value"
        )

    def _explain(self, error: pa.ArrowInvalid, rows_done: int) -> NoReturn:
        """Turn a pyarrow parsing error into a message naming the row and the cell."""
        message = str(error)
        if "UTF8" in message or "UTF-8" in message:
            raise InputError(f"{self.label}: the text is not valid UTF-8 ({message}); save it "
                             f"as UTF-8") from error
        if self._invalid_rows:
            bad = self._invalid_rows[0]
            line = bad.number if bad.number is not None else self._invalid_line()
            where = f"line {line:,}" if line is not None else f"a line{_after(rows_done)}"
            feature = (bad.text or "").split(self.format.delimiter, 1)[0]
            separator = "tab" if self.format.delimiter == "\t" else "comma"
            raise DataError(
                f"{self.label}: {where} (feature {feature!r}) has {bad.actual_columns} fields "
                f"but the header implies {bad.expected_columns} (a feature ID and "
                f"{len(self.sample_ids)} samples); check for missing or extra {separator}s on "
                f"that line"
            ) from error
        if "conversion error" in message:
            self._explain_non_numeric(rows_done, error)
        if "gzip" in message.lower() or "compress" in message.lower():
            raise InputError(f"{self.label}: cannot decompress the file{_after(rows_done)} "
                             f"({message}); it may be truncated") from error
        raise InputError(f"{self.label}: cannot read the matrix{_after(rows_done)}: {message}"
                         ) from error

    def _invalid_line(self) -> int | None:
        """The line number of the first ragged row: pyarrow knows it only when single-threaded."""
        self._invalid_rows.clear()
        raw = None
        try:
            reader, raw = self._reader(pa.string(), use_threads=False)
            for _ in reader:
                pass
        except pa.ArrowInvalid:
            pass
        finally:
            if raw is not None:
                raw.close()
        return self._invalid_rows[0].number if self._invalid_rows else None

    def _explain_non_numeric(self, rows_done: int, error: Exception) -> None:
        """Read the text again as strings from the failing block on; name the first bad cell."""
        try:
            reader, raw = self._reader(pa.string())
        except pa.ArrowInvalid:
            return
        row = 0
        try:
            for batch in reader:
                first, row = row, row + batch.num_rows
                if row <= rows_done:
                    continue
                offset = max(0, rows_done - first)
                best: tuple[int, int] | None = None
                for j in range(1, batch.num_columns):
                    cells = pc.utf8_trim_whitespace(batch.column(j).slice(offset))
                    if _parses(cells):
                        continue
                    position = _first_unparsable(cells)
                    if best is None or position < best[0]:
                        best = (position, j)
                if best is None:
                    continue
                position, j = best
                data_row = first + offset + position
                feature = batch.column(0)[offset + position].as_py()
                value = batch.column(j)[offset + position].as_py()
                raise DataError(
                    f"{self.label}: data row {data_row + 1:,}, feature {feature!r}, sample "
                    f"{self.sample_ids[j - 1]!r}: {value!r} is not a number; values must be "
                    f"numbers, with NA or an empty cell for a missing value"
                ) from error
        except pa.ArrowInvalid:
            return
        finally:
            raw.close()


def _after(rows: int) -> str:
    return f" after data row {rows:,}" if rows else ""


def _header_samples(path: Path, delimiter: str, gz: bool, label: str) -> list[str]:
    """Sample IDs from the header, accepting R's header without a field for the ID column."""
    header, first = peek_records(path, delimiter, gz, label)
    if header is None:
        raise InputError(
            f"{label}: the file is empty; the matrix needs a header row of sample IDs and one "
            f"row per feature"
        )
    if first is not None and len(first) == len(header) + 1:
        samples = list(header)
    else:
        samples = list(header[1:])
    if not samples:
        raise single_field_header_error(label, header[0], delimiter, "matrix")
    _check_sample_ids(samples, label, _KIND)
    if first is None:
        raise InputError(
            f"{label}: the matrix has a header but no feature rows; give a file with one row "
            f"per feature"
        )
    return samples
