"""Reading binary matrices whole: Parquet, AnnData (.h5ad), and Zarr or HDF5 stores.

Zarr and HDF5 stores are read through their block readers (:mod:`manylm.io.block_sources`), the
ones the streaming engine uses: one parser per format. So is a Parquet matrix of numbers (every
sample column floating-point or integer), row group by row group into one array: 10^6 x 100
float32 in 1.1-1.3 s and 1.1 GB, against 2.3-3.9 s and 2.0 GB for pyarrow's whole-table read
and its conversion (2-core machines whose new memory costs 1-2.5 s per GB). Any other Parquet
file (text, boolean or decimal columns, ``NA`` written as text) is read whole by pyarrow and
converted here, verifying page checksums as the block reader does; when that fails, the block
reader reads the file again to name the row group at fault.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from manylm.errors import DataError, InputError, ManylmError
from manylm.io._matrix_checks import MISSING_VALUES, _check_sample_ids
from manylm.io._text_matrix import _explain_non_numeric


def _read_parquet(
    p: Path, label: str, kind: str, target: np.dtype[Any] | None
) -> tuple[pa.Array, list[str], np.ndarray]:
    numeric = _read_parquet_numbers(p, target)
    if numeric is not None:
        return numeric
    import pyarrow.parquet as pq

    try:
        # Pages written with CRC checksums (manylm convert) are verified: a corrupt page is an
        # error, not numbers such as -5.6e36. Pages written without them cannot be checked.
        table = pq.read_table(p, page_checksum_verification=True)
    except (pa.ArrowException, OSError) as exc:
        raise _parquet_fault(p, label, exc) from exc
    from manylm.io.parquet_blocks import feature_id_layout, float64_values

    names = table.column_names
    layout = feature_id_layout(table.schema, label)
    if layout.column is None:
        features = pc.cast(layout.range_ids(0, table.num_rows), pa.string())
        id_pos = -1
    else:
        id_pos = names.index(layout.column)
        features = pc.cast(table.column(id_pos), pa.string()).combine_chunks()
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
            col = float64_values(col, label, samples[j], 0, features)
        values[j] = col.to_numpy()
    return features, samples, values


def _parquet_fault(p: Path, label: str, error: BaseException) -> ManylmError:
    """The error for a Parquet file that cannot be read whole.

    The block reader reads it again a row group at a time (only on this path), so that a
    corrupt or truncated row group is named with its rows, in the words of a streamed run;
    pyarrow's message when it finds nothing more precise.
    """
    from manylm.io.parquet_blocks import ParquetBlockSource

    try:
        source = ParquetBlockSource(p)
        for _ in source.blocks(source.natural_block_rows):
            pass
    except ManylmError as located:
        return located
    detail = " ".join(str(error).split()).rstrip(".") or type(error).__name__
    return InputError(f"{label}: cannot read the file as Parquet ({detail}); it is corrupt, "
                      f"truncated or not Parquet: write it again")


#: Row groups smaller than this (in a file of more rows) are read whole by pyarrow: the block
#: reader's cost per row group (a check of the file, a memory map, a call) then dominates
#: (10^5 x 12 float64 in row groups of 50 rows: 1.39 s against 0.68 s).
FEW_ROWS = 4096


def _read_parquet_numbers(
    p: Path, target: np.dtype[Any] | None
) -> tuple[pa.Array, list[str], np.ndarray] | None:
    """A Parquet matrix of numbers read through the block reader (see the module notes), or
    None when the file needs the general reader: the block reader refused it (a text column,
    say), or found a fault that the general reader reports in its own words (an infinite value:
    which feature and sample; a corrupt page: read again to name the row group)."""
    from manylm.io.parquet_blocks import ParquetBlockSource

    try:
        source = ParquetBlockSource(p)
        if source.natural_block_rows < FEW_ROWS < source.n_features:
            return None  # many small row groups: each costs a check, a map and a call
        # the rows stored by column into one array: no interleaving of the samples
        return _read_through_blocks(source, target, by_column=True)
    except ManylmError:
        return None


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
        raise InputError(f"{label}: the AnnData file has no X matrix; store the values in X "
                         f"(layers are not read)")
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


# --------------------------------------------------------------------------------------------
# Zarr and HDF5 (the layout manylm convert writes), and numeric Parquet: through the block readers


def _read_block_store(
    p: Path, label: str, kind: str, target: np.dtype[Any] | None
) -> tuple[pa.Array, list[str], np.ndarray]:
    """A ``.zarr`` store or ``.h5`` / ``.hdf5`` file read whole through its block reader.

    The values come back samples x features (the other readers' orientation) as a transposed
    view of the rows read: no copy beyond the read, unless ``target`` asks for another dtype.
    """
    from manylm.io.block_sources import open_feature_blocks

    return _read_through_blocks(open_feature_blocks(p), target, by_column=False)


def _read_through_blocks(
    source: Any, target: np.dtype[Any] | None, *, by_column: bool
) -> tuple[pa.Array, list[str], np.ndarray]:
    """Every row of a block source in one read: IDs, sample IDs and the values samples x
    features (a transposed view of the rows read: no copy beyond the read, unless ``target``
    asks for another dtype). ``by_column``: into one Fortran-ordered array, the sample columns
    copied as stored (Parquet), else as the reader lays them out."""
    from manylm.io.feature_blocks import id_array

    n_features = source.n_features
    into = (np.empty((n_features, len(source.sample_ids)), dtype=source.dtype, order="F")
            if by_column else None)
    block = source.read(0, n_features, order="A" if by_column else "C", buffer=into)
    values = block.values.T
    if target is not None and values.dtype != target:
        values = values.astype(target)
    return id_array(block.ids), [str(s) for s in source.sample_ids], values
