"""Writing one features x samples matrix in every block format, and damaging files, for tests.

The layouts are those :func:`manylm.io.open_feature_blocks` reads: Zarr as ``manylm convert``
writes it, HDF5 with h5py (the same three arrays), and AnnData (samples x features, read backed
when streamed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

__all__ = ["corrupt_bytes", "write_block_formats"]

#: Suffixes :func:`write_block_formats` writes, with the package each needs.
BLOCK_FORMATS = {"zarr": "zarr", "h5": "h5py", "h5ad": "anndata"}


def corrupt_bytes(path: Path, offset: int, n: int = 4) -> None:
    """Invert ``n`` bytes of ``path`` from ``offset`` (a disk or copy fault in a stored block)."""
    data = bytearray(path.read_bytes())
    for k in range(n):
        data[offset + k] ^= 0xFF
    path.write_bytes(bytes(data))


def write_block_formats(frame: pd.DataFrame, folder: Path, name: str, *,
                        chunk_rows: int) -> dict[str, Path]:
    """``frame`` (feature IDs in the first column, one float column per sample) written as
    ``name.zarr``, ``name.h5`` and ``name.h5ad`` in ``folder``, stored in blocks of
    ``chunk_rows`` rows (the AnnData file: anndata's own layout). Skips the test when zarr,
    h5py or anndata is missing."""
    for package in BLOCK_FORMATS.values():
        pytest.importorskip(package)
    import anndata
    import h5py

    from manylm.io.convert import convert_matrix

    feature_ids = [str(v) for v in frame.iloc[:, 0]]
    sample_ids = [str(c) for c in frame.columns[1:]]
    values = frame.iloc[:, 1:].to_numpy(dtype=np.float64)
    parquet = folder / f"{name}.for-zarr.parquet"
    frame.to_parquet(parquet, index=False)
    paths = {"zarr": folder / f"{name}.zarr", "h5": folder / f"{name}.h5",
             "h5ad": folder / f"{name}.h5ad"}
    convert_matrix(parquet, paths["zarr"], row_group_rows=chunk_rows)
    parquet.unlink()
    with h5py.File(paths["h5"], "w") as f:
        f.create_dataset("values", data=values, chunks=(chunk_rows, len(sample_ids)),
                         fletcher32=True)
        f.create_dataset("feature_ids", data=feature_ids, dtype=h5py.string_dtype())
        f.create_dataset("sample_ids", data=sample_ids, dtype=h5py.string_dtype())
    anndata.AnnData(X=values.T.copy(), obs=pd.DataFrame(index=sample_ids),
                    var=pd.DataFrame(index=feature_ids)).write_h5ad(paths["h5ad"])
    return paths
