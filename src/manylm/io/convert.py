"""Converting a matrix once to Parquet or Zarr, streaming, so it can then be read by blocks.

A text matrix (TSV/CSV, optionally gzipped) is parsed by ``pyarrow.csv.open_csv`` one block of
text at a time with the column types forced (feature IDs as strings, every sample as float), and
each parsed block is checked (blank IDs, non-numbers, infinite values: the message names the data
row, the feature and the sample) and appended to the output, so the memory used does not grow
with the number of rows (beyond the feature IDs, kept to check that they are unique). A
Parquet, Zarr, HDF5 or AnnData input is copied the same way through its block reader.

The output appears only when complete: it is written under a temporary name beside the target
and renamed; on any error, a full disk or an interruption (Ctrl-C), the temporary output is
removed and an existing target is left as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from manylm.errors import DataError, InputError
from manylm.io._ids import quote_ids
from manylm.io._matrix_checks import _target_dtype
from manylm.io.atomic import atomic_path, temporary_sibling
from manylm.io.block_sources import block_rows_for_bytes, open_feature_blocks
from manylm.io.text_blocks import TextMatrixStream, check_blank_ids, is_text_matrix

__all__ = ["CONVERT_SUFFIXES", "ConvertSummary", "convert_matrix"]

#: Output suffixes of :func:`convert_matrix` (``.zarr`` is a directory).
CONVERT_SUFFIXES: tuple[str, ...] = (".parquet", ".zarr")


@dataclass(frozen=True)
class ConvertSummary:
    """What :func:`convert_matrix` wrote.

    Attributes
    ----------
    destination : str
    format : str
        ``"parquet"`` or ``"zarr"``.
    n_features, n_samples : int
    dtype : str
        ``"float32"`` or ``"float64"``.
    block_rows : int
        Rows per Parquet row group or Zarr chunk.
    """

    destination: str
    format: str
    n_features: int
    n_samples: int
    dtype: str
    block_rows: int


def convert_matrix(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    dtype: Any = None,
    row_group_rows: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ConvertSummary:
    """Write a features x samples matrix as Parquet or Zarr, streaming, in constant memory.

    Parameters
    ----------
    source : str or path-like
        A text matrix (``.tsv``, ``.txt``, ``.tab``, ``.csv``, each optionally ``.gz``; read as
        by :func:`manylm.io.read_matrix`: header of sample IDs, feature IDs in the first column,
        ``NA`` / ``NaN`` / empty for missing values), or any file
        :func:`manylm.io.open_feature_blocks` opens.
    destination : str or path-like
        ``.parquet`` (feature IDs in the first column, one column per sample; uncompressed
        pages with CRC checksums) or ``.zarr`` (the layout of :mod:`manylm.io.zarr_blocks`).
        Its directory must exist. An existing Parquet file or Zarr store is replaced, only once
        the new one is complete.
    dtype : {None, "float32", "float64"}, default None
        The stored values. None keeps the input's float32 or float64 (float64 for text).
    row_group_rows : int, optional
        Rows per Parquet row group or Zarr chunk; by default about 32 MB of values (a multiple
        of 1024 rows, at least 1024).
    progress : callable, optional
        Called as ``progress(done, total)`` after each block: bytes of the input file read for
        a text matrix (compressed bytes for ``.gz``), rows for other inputs.

    Returns
    -------
    ConvertSummary

    Raises
    ------
    InputError
        If a name has an unsupported suffix, the destination's directory does not exist, the
        input is unreadable, empty or truncated, or the disk fills up (no output is left).
    DataError
        If a feature ID is blank or repeated, a cell is not a number or a value is infinite
        (the message names the data row, the feature and the sample).
    """
    destination_label = os.fspath(destination)
    target = _target_dtype(dtype)
    out_format = _output_format(destination_label)
    if row_group_rows is not None and (isinstance(row_group_rows, bool)
                                       or not isinstance(row_group_rows, (int, np.integer))
                                       or row_group_rows < 1):
        raise InputError(f"row_group_rows must be a positive integer, not {row_group_rows!r}")
    source_path, destination_path = Path(source), Path(destination)
    if source_path.exists() and destination_path.exists() and os.path.samefile(
            source_path, destination_path):
        raise InputError(f"{destination_label}: the output would overwrite the input; "
                         f"choose another output name")
    if not destination_path.absolute().parent.is_dir():
        raise InputError(
            f"{destination_label}: cannot write the output: directory "
            f"{os.fspath(destination_path.absolute().parent)!r} does not exist; create it first"
        )

    stream = _open_input(source_path, target)
    rows = int(row_group_rows or block_rows_for_bytes(len(stream.sample_ids),
                                                      stream.dtype.itemsize))
    try:
        with _atomic_output(destination_path, out_format) as temporary:
            n_features = _write(stream, temporary, out_format, rows, progress)
    except OSError as error:  # reading errors are InputErrors already: this is the output
        if error.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(error):
            raise InputError(
                f"{destination_label}: no space left on the device while writing; nothing was "
                f"written (the partial output was removed); free some space or write elsewhere"
            ) from error
        detail = " ".join(str(error).split())
        raise InputError(f"{destination_label}: cannot write the output ({detail}); nothing "
                         f"was written") from error
    return ConvertSummary(destination_label, out_format, n_features, len(stream.sample_ids),
                          stream.dtype.name, min(rows, n_features))


def _output_format(label: str) -> str:
    name = label.rstrip("/").lower()
    for suffix in CONVERT_SUFFIXES:
        if name.endswith(suffix):
            return suffix[1:]
    shown = Path(label).suffix or "no suffix"
    raise InputError(
        f"{label}: cannot tell the output format from the name ({shown}); name it .parquet "
        f"or .zarr"
    )


def _open_input(path: Path, target: np.dtype | None) -> Any:
    if is_text_matrix(path):
        return TextMatrixStream(path, dtype=target or np.dtype(np.float64))
    return _SourceStream(open_feature_blocks(path), target)


class _SourceStream:
    """The blocks of a :class:`FeatureBlockSource`, as the text stream yields them."""

    def __init__(self, source: Any, target: np.dtype | None) -> None:
        self.source = source
        self.label: str = source.path
        self.sample_ids: list[str] = list(source.sample_ids)
        self.dtype = np.dtype(target or source.dtype)
        self.total = int(source.n_features)
        self.done = 0

    def __iter__(self) -> Iterator[tuple[pa.Array, np.ndarray]]:
        rows = max(1, self.source.natural_block_rows)
        for block in self.source.blocks(rows):
            ids = pa.array(block.feature_ids, type=pa.string())
            check_blank_ids(ids, block.start, self.label)
            self.done = block.stop
            yield ids, block.values


def _write(stream: Any, temporary: Path, out_format: str, rows: int,
           progress: Callable[[int, int], None] | None) -> int:
    if out_format == "parquet":
        from manylm.io.parquet_blocks import ParquetMatrixWriter

        writer: Any = ParquetMatrixWriter(temporary, stream.sample_ids, stream.dtype, rows)
    else:
        from manylm.io.zarr_blocks import ZarrMatrixWriter

        writer = ZarrMatrixWriter(temporary, stream.sample_ids, stream.dtype, rows)
    ids: list[pa.Array] = []
    try:
        for feature_ids, values in stream:
            writer.write(feature_ids, values)
            ids.append(feature_ids)
            if progress is not None:
                progress(stream.done, stream.total)
        n_features = writer.close()
    except BaseException:
        writer.abort()
        raise
    if n_features == 0:
        raise InputError(
            f"{stream.label}: the matrix has a header but no feature rows; give a file with one "
            f"row per feature"
        )
    _check_unique_ids(pa.chunked_array(ids, type=pa.string()), stream.label)
    return n_features


def _check_unique_ids(ids: pa.ChunkedArray, label: str) -> None:
    if pc.count_distinct(ids).as_py() == len(ids):
        return
    counts = pc.value_counts(ids)
    repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    first = repeated[0].as_py()
    rows = pc.indices_nonzero(pc.equal(ids.combine_chunks(), first)).to_pylist()
    shown = ", ".join(f"{r + 1:,}" for r in rows[:5])
    raise DataError(
        f"{label}: {len(repeated)} feature ID(s) occur more than once: "
        f"{quote_ids(repeated.to_pylist(), 5)} ({first!r} on data rows {shown}); feature IDs "
        f"must be unique: remove or rename the repeated rows (or summarise them per feature "
        f"beforehand)"
    )


@contextlib.contextmanager
def _atomic_output(path: Path, out_format: str) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto it when the block succeeds."""
    if out_format == "parquet":
        with atomic_path(path) as temporary:
            yield temporary
        return
    with _atomic_directory(path) as temporary:
        yield temporary


@contextlib.contextmanager
def _atomic_directory(path: Path) -> Iterator[Path]:
    """Like :func:`manylm.io.atomic_path` for a directory (a Zarr store).

    A directory cannot be renamed onto a non-empty one, so an existing store is first moved
    aside, then the new one moved in, then the old one deleted (restored if the move fails).
    Only an existing Zarr store is replaced, never another directory or a file.
    """
    label = os.fspath(path)
    if path.exists() and not (path.is_dir() and ((path / "zarr.json").is_file()
                                                 or (path / ".zgroup").is_file())):
        kind = "directory" if path.is_dir() else "file"
        raise InputError(
            f"{label}: exists and is a {kind} that is not a Zarr store; it will not be "
            f"replaced: remove it or choose another name"
        )
    temporary = temporary_sibling(path)
    token = temporary.name.rpartition("-")[2]
    try:
        yield temporary
        if not temporary.is_dir():
            raise FileNotFoundError(f"nothing was written to {temporary} for {label}")
        if path.exists():
            old = path.parent / f".{path.name}.old-{token}"
            os.replace(path, old)
            try:
                os.replace(temporary, path)
            except BaseException:
                os.replace(old, path)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temporary, path)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
