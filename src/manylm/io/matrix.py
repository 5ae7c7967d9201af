"""Reading expression and weight matrices: features in rows, samples in columns.

Text files (tab- or comma-separated, optionally gzip-compressed) are parsed by ``pyarrow.csv``
with the column types forced (first column string, every other column float64), so IDs such as
``01005`` stay strings and a 10^6 x 100 matrix reads in seconds. Parquet and AnnData (``.h5ad``)
files are read through pyarrow (verifying page checksums) and anndata; Zarr stores and HDF5 files
(the layout ``manylm convert`` writes) whole through their block readers
(:func:`manylm.io.open_feature_blocks`), so that each format is parsed in one place. Whatever the
format, the result is checked the same way: unique, non-blank feature and sample IDs, numbers
only, no infinite values.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from manylm.io._binary_matrix import _read_block_store, _read_h5ad, _read_parquet
from manylm.io._matrix_checks import MISSING_VALUES, _assemble, _check_is_file, _target_dtype
from manylm.io._text_matrix import _read_text
from manylm.io.formats import MATRIX_SUFFIXES, detect_format

__all__ = ["MISSING_VALUES", "read_matrix", "read_weights"]


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
        optional package ``anndata``); ``.zarr`` (a directory; needs ``zarr``) and ``.h5`` /
        ``.hdf5`` (needs ``h5py``), with the layout of :mod:`manylm.io.zarr_blocks`: a 2-D
        array ``values`` (features x samples) and 1-D string arrays ``feature_ids`` and
        ``sample_ids``.

        In text files the header row holds the sample IDs and the first column the feature IDs;
        the first header field names the ID column and is otherwise ignored. A header with one
        field fewer than the data rows (as written by R's ``write.table``) is accepted: all its
        fields are then sample IDs. Empty cells, ``NA``, ``NaN`` and ``nan`` are missing values.
        In Parquet files the feature IDs are the first column, or the stored pandas index if it
        is a single column; pages written with CRC checksums (as ``manylm convert`` writes
        them) are verified, so a corrupt page is an error naming its row group and rows.
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
        If the file does not exist, its suffix is unknown, it is empty, unreadable or corrupt, or
        it has no sample columns.
    DataError
        If feature or sample IDs are blank or repeated, a cell is not a number, a value is
        infinite, or (for weights) negative. The message names the file, the feature and sample
        IDs concerned and what to do.
    """
    label = os.fspath(path)
    p = Path(path)
    target = _target_dtype(dtype)
    if not p.name.lower().endswith(".zarr"):  # a Zarr store is a directory: its reader checks it
        _check_is_file(p, label, kind)
    fmt = detect_format(p, MATRIX_SUFFIXES, what=f"{kind} matrix")
    if fmt.name == "parquet":
        features, samples, values = _read_parquet(p, label, kind, target)
    elif fmt.name == "h5ad":
        features, samples, values = _read_h5ad(p, label, kind, target)
    elif fmt.name in ("zarr", "hdf5"):
        features, samples, values = _read_block_store(p, label, kind, target)
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


