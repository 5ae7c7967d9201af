"""Reading TSV/CSV (optionally gzipped) matrices with pyarrow, and explaining what is wrong."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from manylm.errors import DataError, InputError
from manylm.io._matrix_checks import MISSING_VALUES, _check_sample_ids
from manylm.io._text import (
    open_text,
    peek_records,
    single_field_header_error,
    unreadable_text_error,
)
from manylm.io.formats import FileFormat

_BLOCK_SIZE = 8 << 20  # bytes of text per pyarrow parsing block


def _read_text(
    p: Path, fmt: FileFormat, label: str, kind: str, target: np.dtype[Any]
) -> tuple[pa.Array, list[str], np.ndarray]:
    assert fmt.delimiter is not None
    header, first = peek_records(p, fmt.delimiter, fmt.gzip, label)
    if header is None:
        raise InputError(
            f"{label}: the file is empty; the {kind} matrix needs a header row of sample IDs "
            f"and one row per feature"
        )
    if first is not None and len(first) == len(header) + 1:
        samples = list(header)  # R write.table style: no header field for the ID column
    else:
        samples = list(header[1:])
    if not samples:
        raise single_field_header_error(label, header[0], fmt.delimiter, f"{kind} matrix")
    _check_sample_ids(samples, label, kind)
    if first is None:
        raise InputError(
            f"{label}: the {kind} matrix has a header but no feature rows; "
            f"give a file with one row per feature"
        )

    names = [f"c{i}" for i in range(len(samples) + 1)]
    read_opts = pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=_BLOCK_SIZE)
    parse_opts = pacsv.ParseOptions(delimiter=fmt.delimiter)
    types = {name: pa.float64() for name in names[1:]}
    types[names[0]] = pa.string()
    convert_opts = pacsv.ConvertOptions(
        column_types=types,
        null_values=list(MISSING_VALUES),
        strings_can_be_null=False,
        quoted_strings_can_be_null=True,
        include_columns=names,
    )
    try:
        table = pacsv.read_csv(
            p, read_options=read_opts, parse_options=parse_opts, convert_options=convert_opts
        )
    except pa.ArrowInvalid as exc:
        _explain_text_error(exc, p, fmt, label, kind, samples, read_opts, parse_opts)
    except (OSError, EOFError) as exc:  # a gzip stream cut short, or not gzip at all
        raise unreadable_text_error(label, exc, fmt.gzip) from exc

    n_features = table.num_rows
    columns: list[pa.ChunkedArray | None] = list(table.columns)
    del table  # free each column's buffers once copied, to keep the peak memory near 1x
    features = columns[0].combine_chunks()  # type: ignore[union-attr]
    values = np.empty((len(samples), n_features), dtype=target)
    for j in range(len(samples)):
        values[j] = columns[j + 1].to_numpy()  # type: ignore[union-attr]
        columns[j + 1] = None
    return features, samples, values


def _explain_text_error(
    exc: pa.ArrowInvalid,
    p: Path,
    fmt: FileFormat,
    label: str,
    kind: str,
    samples: list[str],
    read_opts: pacsv.ReadOptions,
    parse_opts: pacsv.ParseOptions,
) -> NoReturn:
    """Turn a pyarrow parsing error into a message naming the line or the cell."""
    msg = str(exc)
    if "UTF8" in msg or "UTF-8" in msg:
        raise InputError(f"{label}: the text is not valid UTF-8 ({msg}); save it as UTF-8") from exc
    if "Expected" in msg and "columns" in msg:
        _explain_ragged(p, fmt, label, len(samples), exc)
    if "conversion error" in msg:
        convert_opts = pacsv.ConvertOptions(
            column_types={name: pa.string() for name in read_opts.column_names},
            null_values=list(MISSING_VALUES),
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        )
        try:
            table = pacsv.read_csv(
                p, read_options=read_opts, parse_options=parse_opts, convert_options=convert_opts
            )
        except pa.ArrowInvalid:
            pass
        else:
            _explain_non_numeric(
                table.column(0),
                [table.column(j + 1) for j in range(len(samples))],
                samples,
                label,
                kind,
                exc,
            )
    raise InputError(f"{label}: cannot read the {kind} matrix: {msg}") from exc


def _explain_ragged(p: Path, fmt: FileFormat, label: str, n_samples: int, exc: Exception) -> None:
    assert fmt.delimiter is not None
    sep = "tab" if fmt.delimiter == "\t" else "comma"
    with open_text(p, fmt.gzip) as fh:
        reader = csv.reader(fh, delimiter=fmt.delimiter)
        expected = None
        for record in reader:
            if not record:
                continue
            if expected is None:
                # header; data rows have one field per sample plus the feature ID
                expected = n_samples + 1
                continue
            if len(record) != expected:
                feature = record[0] if record else ""
                raise DataError(
                    f"{label}: line {reader.line_num} (feature {feature!r}) has {len(record)} "
                    f"fields but the header implies {expected} (a feature ID and {n_samples} "
                    f"samples); check for missing or extra {sep}s on that line"
                ) from exc


def _parses(arr: pa.Array) -> bool:
    try:
        pc.cast(arr, pa.float64())
    except pa.ArrowInvalid:
        return False
    return True


def _first_unparsable(arr: pa.Array) -> int:
    """Position of the first string in ``arr`` (known to contain one) that is not a number."""
    lo, hi = 0, len(arr)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _parses(arr.slice(lo, mid - lo)):
            lo = mid
        else:
            hi = mid
    return lo


def _explain_non_numeric(
    features: pa.ChunkedArray | pa.Array,
    columns: list[pa.ChunkedArray | pa.Array],
    samples: list[str],
    label: str,
    kind: str,
    exc: Exception,
) -> None:
    """Raise a DataError naming the first non-numeric cell (file order) of string columns."""
    best: tuple[int, int] | None = None  # (row, sample)
    for j, col in enumerate(columns):
        arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        trimmed = pc.utf8_trim_whitespace(arr)
        if _parses(trimmed):
            continue
        row = _first_unparsable(trimmed)
        if best is None or row < best[0]:
            best = (row, j)
    if best is None:
        return
    row, j = best
    feature = features[row].as_py()
    value = columns[j][row].as_py()
    hint = ""
    head = pc.drop_null(pc.utf8_trim_whitespace(columns[j]))[:3]
    if len(head) and all(not _parses(head.slice(k, 1)) for k in range(len(head))):
        hint = (
            f" Column {samples[j]!r} does not look numeric at all: if it holds annotations, "
            f"remove it (only the first column may hold IDs)."
        )
    raise DataError(
        f"{label}: feature {feature!r}, sample {samples[j]!r}: {value!r} is not a number; "
        f"{kind} values must be numbers, with NA or an empty cell for a missing value.{hint}"
    ) from exc
