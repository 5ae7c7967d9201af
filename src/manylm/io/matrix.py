"""Reading expression and weight matrices: features in rows, samples in columns.

Text files (tab- or comma-separated, optionally gzip-compressed) are parsed by ``pyarrow.csv``
with the column types forced (first column string, every other column float64), so IDs such as
``01005`` stay strings and a 10^6 x 100 matrix reads in seconds. Parquet and AnnData (``.h5ad``)
files are read through pyarrow and anndata. Whatever the format, the result is checked the same
way: unique, non-blank feature and sample IDs, numbers only, no infinite values.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from manylm.errors import DataError, InputError
from manylm.io._ids import duplicated_ids, empty_id_positions, quote_ids
from manylm.io._text import open_text, peek_records
from manylm.io.formats import MATRIX_SUFFIXES, FileFormat, detect_format

__all__ = ["MISSING_VALUES", "read_matrix", "read_weights"]

#: Cell contents read as a missing value (NaN), besides numbers.
MISSING_VALUES: tuple[str, ...] = ("", "NA", "NaN", "nan")

_BLOCK_SIZE = 8 << 20  # bytes of text per pyarrow parsing block


def read_matrix(
    path: str | os.PathLike[str],
    *,
    kind: str = "expression",
    dtype: Any = np.float64,
) -> pd.DataFrame:
    """Read a features x samples matrix of numbers.

    Parameters
    ----------
    path : str or path-like
        The file. Its suffix tells the format: ``.tsv``, ``.txt``, ``.tab`` (tab-separated),
        ``.csv`` (comma-separated), each optionally followed by ``.gz``; ``.parquet``;
        ``.h5ad`` (AnnData, which stores samples x features and is transposed here; needs the
        optional package ``anndata``).

        In text files the header row holds the sample IDs and the first column the feature IDs;
        the first header field names the ID column and is otherwise ignored. A header with one
        field fewer than the data rows (as written by R's ``write.table``) is accepted: all its
        fields are then sample IDs. Empty cells, ``NA``, ``NaN`` and ``nan`` are missing values.
        In Parquet files the feature IDs are the first column, or the stored pandas index if it
        is a single column.
    kind : str, default "expression"
        What the matrix holds, used in error messages. With ``"weights"`` negative values are
        refused as well.
    dtype : numpy dtype or None, default numpy.float64
        The dtype of the values, float64 or float32. ``None`` keeps float32 values of Parquet and
        AnnData files as float32 and reads everything else as float64.

    Returns
    -------
    pandas.DataFrame
        Values of dtype ``dtype``, index = feature IDs (strings, named ``"feature"``), columns =
        sample IDs (strings), both in file order. Missing values are NaN.

    Raises
    ------
    InputError
        If the file does not exist, its suffix is unknown, it is empty or unreadable, or it has no
        sample columns.
    DataError
        If feature or sample IDs are blank or repeated, a cell is not a number, a value is
        infinite, or (for weights) negative. The message names the file, the feature and sample
        IDs concerned and what to do.
    """
    label = os.fspath(path)
    p = Path(path)
    target = _target_dtype(dtype)
    _check_is_file(p, label, kind)
    fmt = detect_format(p, MATRIX_SUFFIXES, what=f"{kind} matrix")
    if fmt.name == "parquet":
        features, samples, values = _read_parquet(p, label, kind, target)
    elif fmt.name == "h5ad":
        features, samples, values = _read_h5ad(p, label, kind, target)
    else:
        features, samples, values = _read_text(p, fmt, label, kind, target or np.dtype(np.float64))
    return _assemble(features, samples, values, label, kind)


def read_weights(path: str | os.PathLike[str], *, dtype: Any = np.float64) -> pd.DataFrame:
    """Read a features x samples matrix of observation weights.

    The same reader as :func:`read_matrix` with ``kind="weights"``: same formats and checks,
    and negative weights are refused. Missing weights are NaN.

    Parameters
    ----------
    path : str or path-like
        The file; see :func:`read_matrix` for the formats.
    dtype : numpy dtype or None, default numpy.float64
        As for :func:`read_matrix`.

    Returns
    -------
    pandas.DataFrame
        Weights, index = feature IDs, columns = sample IDs.
    """
    return read_matrix(path, kind="weights", dtype=dtype)


# --------------------------------------------------------------------------------------------
# common checks


def _target_dtype(dtype: Any) -> np.dtype[Any] | None:
    if dtype is None:
        return None
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise InputError(f"dtype must be float64, float32 or None, not {dtype!r}") from exc
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise InputError(f"dtype must be float64, float32 or None, not {dt}")
    return dt


def _check_is_file(p: Path, label: str, kind: str) -> None:
    if not p.exists():
        raise InputError(
            f"{label}: {kind} file not found (looked in {p.absolute().parent}); check the path"
        )
    if not p.is_file():
        raise InputError(f"{label}: is a directory, not a {kind} file; give the file's path")


def _assemble(
    features: pa.Array,
    samples: Sequence[str],
    values: np.ndarray,
    label: str,
    kind: str,
) -> pd.DataFrame:
    """Check IDs and values (samples x features) and build the features x samples frame."""
    _check_sample_ids(samples, label, kind)
    if len(features) == 0:
        raise InputError(
            f"{label}: the {kind} matrix has sample columns but no feature rows; "
            f"give a file with one row per feature"
        )
    blank = pc.or_kleene(pc.is_null(features), pc.equal(pc.utf8_trim_whitespace(features), ""))
    if pc.any(blank).as_py():
        rows = pc.indices_nonzero(pc.fill_null(blank, True)).to_pylist()
        shown = ", ".join(str(r + 1) for r in rows[:5]) + (" ..." if len(rows) > 5 else "")
        raise DataError(
            f"{label}: {len(rows)} feature row(s) have a blank feature ID (data rows {shown}); "
            f"give every row an ID in the first column or remove it"
        )
    feature_ids = features.to_numpy(zero_copy_only=False)
    index = pd.Index(feature_ids, name="feature")
    dups = duplicated_ids(index)
    if dups:
        raise DataError(
            f"{label}: {len(dups)} feature ID(s) occur more than once: {quote_ids(dups, 5)}; "
            f"feature IDs must be unique: remove or rename the repeated rows "
            f"(or summarise them per feature beforehand)"
        )
    columns = pd.Index([str(s) for s in samples])
    _reject_cells(np.isinf(values), values, index, columns, label, "value", "infinite",
                  "infinite value", f"{kind} values must be finite numbers: write NA for a "
                  "missing value")
    if kind == "weights":
        _reject_cells(values < 0, values, index, columns, label, "weight", "negative",
                      "negative weight", "weights must be >= 0 (0 or NA to ignore an observation)")
    return pd.DataFrame(values.T, index=index, columns=columns, copy=False)


def _check_sample_ids(samples: Sequence[str], label: str, kind: str) -> None:
    if len(samples) == 0:
        raise InputError(
            f"{label}: no sample columns: the {kind} matrix needs feature IDs in the first column "
            f"and one column per sample"
        )
    blank = empty_id_positions(samples)
    if blank:
        cols = ", ".join(str(i + 2) for i in blank[:5])
        raise DataError(
            f"{label}: {len(blank)} sample column(s) have a blank sample ID in the header "
            f"(column {cols}); name every sample column (a trailing delimiter at the end of "
            f"the lines also makes an empty column)"
        )
    dups = duplicated_ids(samples)
    if dups:
        raise DataError(
            f"{label}: {len(dups)} sample ID(s) occur more than once in the header: "
            f"{quote_ids(dups)}; sample IDs must be unique: rename or remove the repeated columns"
        )


def _first_flagged(bad: np.ndarray) -> tuple[int, int]:
    """Return (sample, feature) position of the first flagged cell in file (row-major) order."""
    feature = int(np.argmax(bad.any(axis=0)))
    sample = int(np.argmax(bad[:, feature]))
    return sample, feature


def _reject_cells(
    bad: np.ndarray, values: np.ndarray, features: pd.Index, samples: pd.Index, label: str,
    noun: str, problem: str, what: str, fix: str,
) -> None:
    """Raise naming the first flagged cell (in file order) and how many more there are."""
    if not bad.any():
        return
    count = int(bad.sum())
    j, i = _first_flagged(bad)
    more = f" ({count - 1} more {what}(s) in the file)" if count > 1 else ""
    raise DataError(
        f"{label}: feature {features[i]!r}, sample {samples[j]!r}: {noun} {values[j, i]} is "
        f"{problem}{more}; {fix}"
    )


# --------------------------------------------------------------------------------------------
# text: tsv / csv (.gz)


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
        other, name, suffix = (
            ("\t", "tab", ".tsv") if fmt.delimiter == "," else (",", "comma", ".csv")
        )
        hint = ""
        if other in header[0]:
            hint = (
                f" The header contains {name}s: the file seems {name}-separated; name it {suffix}."
            )
        raise InputError(
            f"{label}: no sample columns: the header has a single field. The {kind} matrix "
            f"needs feature IDs in the first column and one column per sample.{hint}"
        )
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


# --------------------------------------------------------------------------------------------
# parquet


def _read_parquet(
    p: Path, label: str, kind: str, target: np.dtype[Any] | None
) -> tuple[pa.Array, list[str], np.ndarray]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{label}: cannot read the file as Parquet: {exc}") from exc
    if table.num_columns == 0:
        raise InputError(f"{label}: the Parquet file has no columns")
    names = table.column_names
    id_pos = 0
    meta = table.schema.pandas_metadata
    index_columns = (meta or {}).get("index_columns", [])
    stored = [c for c in index_columns if isinstance(c, str)]
    if len(stored) > 1:
        raise InputError(
            f"{label}: the Parquet file stores a {len(stored)}-level index; write it with a "
            f"single feature ID index or with the feature IDs as the first column"
        )
    if stored and stored[0] in names:
        id_pos = names.index(stored[0])
    features = _parquet_feature_ids(table.column(id_pos), names[id_pos], label)
    sample_pos = [k for k in range(len(names)) if k != id_pos]
    samples = [names[k] for k in sample_pos]
    _check_sample_ids(samples, label, kind)

    columns: list[pa.ChunkedArray] = []
    for k in sample_pos:
        col = table.column(k)
        t = col.type
        if pa.types.is_dictionary(t):
            col = col.cast(t.value_type)
            t = col.type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            col = pc.cast(col, pa.string())
            missing = pc.is_in(col, value_set=pa.array(MISSING_VALUES))
            col = pc.if_else(missing, pa.scalar(None, pa.string()), col)
        elif not (
            pa.types.is_floating(t)
            or pa.types.is_integer(t)
            or pa.types.is_decimal(t)
            or pa.types.is_boolean(t)
        ):
            raise DataError(
                f"{label}: sample column {names[k]!r} has type {t}; {kind} values must be numbers"
            )
        columns.append(col)
    string_cols = [j for j, c in enumerate(columns) if pa.types.is_string(c.type)]
    if string_cols:
        try:
            parsed = {
                j: pc.cast(pc.utf8_trim_whitespace(columns[j]), pa.float64()) for j in string_cols
            }
        except pa.ArrowInvalid as exc:
            _explain_non_numeric(
                features,
                [columns[j] for j in string_cols],
                [samples[j] for j in string_cols],
                label,
                kind,
                exc,
            )
            raise InputError(f"{label}: cannot read the {kind} matrix: {exc}") from exc
        for j, col in parsed.items():
            columns[j] = col

    if target is None:
        all32 = all(pa.types.is_float32(c.type) for c in columns)
        target = np.dtype(np.float32 if all32 else np.float64)
    values = np.empty((len(columns), table.num_rows), dtype=target)
    for j, col in enumerate(columns):
        if not pa.types.is_floating(col.type):
            col = pc.cast(col, pa.float64())
        values[j] = col.to_numpy()
    return features, samples, values


def _parquet_feature_ids(col: pa.ChunkedArray, name: str, label: str) -> pa.Array:
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        pass
    elif pa.types.is_integer(t):
        pass  # integer IDs (e.g. Entrez gene IDs) become their decimal strings
    else:
        raise DataError(
            f"{label}: the feature ID column {name!r} has type {t}; it must hold strings "
            f"(store the feature IDs as the first column, of string type)"
        )
    return pc.cast(col, pa.string()).combine_chunks()


# --------------------------------------------------------------------------------------------
# h5ad


def _read_h5ad(
    p: Path, label: str, kind: str, target: np.dtype[Any] | None
) -> tuple[pa.Array, list[str], np.ndarray]:
    try:
        import anndata
    except ImportError as exc:
        raise InputError(
            f"{label}: reading .h5ad files needs the optional package anndata, which is not "
            f"installed; install it (pip install 'manylm[anndata]') or convert the matrix to "
            f"TSV or Parquet"
        ) from exc
    try:
        adata = anndata.read_h5ad(p)
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"{label}: cannot read the file as AnnData (.h5ad): {exc}") from exc
    x = adata.X
    if x is None:
        raise InputError(f"{label}: the AnnData file has no X matrix")
    if hasattr(x, "toarray"):
        x = x.toarray()
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DataError(f"{label}: X has dtype {x.dtype}; {kind} values must be numbers")
    if target is None:
        target = np.dtype(np.float32 if x.dtype == np.float32 else np.float64)
    values = np.ascontiguousarray(x, dtype=target)  # samples (obs) x features (var)
    features = pa.array([str(v) for v in adata.var_names], type=pa.string())
    samples = [str(v) for v in adata.obs_names]
    return features, samples, values
