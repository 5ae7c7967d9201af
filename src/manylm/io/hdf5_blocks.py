"""HDF5 matrices (``.h5``, ``.hdf5``) read a block of rows at a time with h5py.

The layout is the Zarr one (:mod:`manylm.io.zarr_blocks`) with HDF5 datasets at the root of the
file: ``values`` (2-D, features x samples, float32 or float64, NaN for missing; best chunked
along the rows), ``feature_ids`` and ``sample_ids`` (1-D strings, variable or fixed length).
A corrupt chunk is detected when the dataset is compressed or has Fletcher-32 checksums.

Write one with h5py, for example::

    with h5py.File("data.h5", "w") as f:
        f.create_dataset("values", data=y, chunks=(4096, y.shape[1]), fletcher32=True)
        f.create_dataset("feature_ids", data=list(feature_ids), dtype=h5py.string_dtype())
        f.create_dataset("sample_ids", data=list(sample_ids), dtype=h5py.string_dtype())
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from manylm.errors import InputError
from manylm.io._matrix_checks import _check_sample_ids
from manylm.io.block_sources import (
    BlockSourceBase,
    block_rows_for_bytes,
    decode_ids,
    refuse_non_text_ids,
)

__all__ = ["HDF5_LAYOUT", "HDF5BlockSource"]

#: What an HDF5 matrix must hold, for error messages.
HDF5_LAYOUT = (
    "an HDF5 file with, at its root, a 2-D float32 or float64 dataset 'values' (features x "
    "samples) and 1-D string datasets 'feature_ids' (one per row) and 'sample_ids' (one per "
    "column)"
)


def _h5py(label: str) -> Any:
    try:
        import h5py
    except ImportError as error:
        raise InputError(
            f"{label}: reading HDF5 files needs the optional package h5py, which is not "
            f"installed; install it (pip install 'manylm[hdf5]') or use Parquet"
        ) from error
    return h5py


class HDF5BlockSource(BlockSourceBase):
    """An HDF5 features x samples matrix (see the module for the layout) read by rows.

    Parameters
    ----------
    path : str or path-like
        The ``.h5`` / ``.hdf5`` file.

    Attributes
    ----------
    path, sample_ids, n_features, dtype, natural_block_rows
        See :class:`~manylm.io.feature_blocks.FeatureBlockSource`; ``natural_block_rows`` is
        the chunk length along the rows (about 32 MB of rows for a contiguous dataset).

    Raises
    ------
    InputError
        If the file is not HDF5, is truncated, or does not have that layout.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._file_path = Path(path)
        handle = self._open()
        h5py = _h5py(self.path)
        members = {}
        for name, ndim in (("values", 2), ("feature_ids", 1), ("sample_ids", 1)):
            member = handle.get(name)
            if not isinstance(member, h5py.Dataset) or member.ndim != ndim:
                raise InputError(
                    f"{self.path}: no {ndim}-D dataset {name!r} at the root of the file (it "
                    f"holds {sorted(handle.keys()) or 'nothing'}); expected {HDF5_LAYOUT}"
                )
            members[name] = member
        values = members["values"]
        if values.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise InputError(
                f"{self.path}: 'values' has dtype {values.dtype}; it must be float32 or float64 "
                f"(expected {HDF5_LAYOUT})"
            )
        n_features, n_samples = values.shape
        if members["feature_ids"].shape[0] != n_features or (
                members["sample_ids"].shape[0] != n_samples):
            raise InputError(
                f"{self.path}: 'values' is {n_features} x {n_samples} but there are "
                f"{members['feature_ids'].shape[0]} feature IDs and "
                f"{members['sample_ids'].shape[0]} sample IDs (expected {HDF5_LAYOUT})"
            )
        for name in ("feature_ids", "sample_ids"):
            refuse_non_text_ids(self.path, name, members[name].dtype, HDF5_LAYOUT)
        try:
            self.sample_ids = [str(s) for s in decode_ids(members["sample_ids"][()])]
        except (OSError, ValueError) as error:
            raise InputError(f"{self.path}: cannot read 'sample_ids': {error}") from error
        _check_sample_ids(self.sample_ids, self.path, "expression")
        self.n_features = int(n_features)
        self.dtype = np.dtype(values.dtype)
        self.natural_block_rows = (int(values.chunks[0]) if values.chunks
                                   else block_rows_for_bytes(n_samples, self.dtype.itemsize))
        self._state().file = handle

    def _open(self) -> Any:
        h5py = _h5py(self.path)
        try:
            return h5py.File(self._file_path, "r")
        except OSError as error:
            raise InputError(
                f"{self.path}: cannot open as HDF5 ({error}); it is not HDF5 or it is "
                f"truncated: write it again"
            ) from error

    def _handle(self) -> Any:
        state = self._state()
        if "file" not in state.__dict__:
            state.file = self._open()
        return state.file

    def _load_block(
        self, index: int, start: int, stop: int, positions: NDArray[np.intp] | None
    ) -> tuple[NDArray[np.object_], NDArray[np.floating]]:
        """Feature IDs and values of rows ``start:stop`` (one chunk of rows)."""
        handle = self._handle()
        try:
            block = handle["values"][start:stop]
        except (OSError, ValueError, RuntimeError) as error:
            raise self._corrupt(f"chunk {index}", start, stop, error) from error
        try:
            ids = decode_ids(handle["feature_ids"][start:stop])
        except (OSError, ValueError, RuntimeError) as error:
            raise self._corrupt(f"the feature IDs of chunk {index}", start, stop,
                                error) from error
        if positions is not None:
            block = block[:, positions]
        return ids, block
