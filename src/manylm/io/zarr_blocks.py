"""Zarr matrices read and written a chunk of rows at a time.

The layout (written by ``manylm convert OUT.zarr``, and required when reading) is a Zarr group
(a directory) holding:

* ``values``: 2-D array, features x samples, float32 or float64, chunked along the rows (a chunk
  holds every sample of its rows); NaN is a missing value;
* ``feature_ids``: 1-D string array, one ID per row of ``values``;
* ``sample_ids``: 1-D string array, one ID per column of ``values``.

``manylm convert`` stores each chunk with a CRC32C checksum (a corrupt chunk is detected, not
read as numbers), writes every chunk even when all its values are missing, and records that in
the group's ``manylm`` attribute, so that a chunk file missing from such a store is an error
rather than silently read as NaN (Zarr's meaning of an absent chunk).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from manylm.errors import InputError
from manylm.io._matrix_checks import _check_sample_ids
from manylm.io.block_sources import (
    BlockSourceBase,
    decode_ids,
    refuse_non_text_ids,
    rows_label,
)

__all__ = ["ZARR_LAYOUT", "ZarrBlockSource", "ZarrMatrixWriter"]

#: What a Zarr matrix must hold, for error messages.
ZARR_LAYOUT = (
    "a Zarr group with a 2-D float32 or float64 array 'values' (features x samples) and 1-D "
    "string arrays 'feature_ids' (one per row) and 'sample_ids' (one per column), as written "
    "by manylm convert"
)
_ATTRIBUTE = "manylm"


def _zarr(label: str) -> Any:
    try:
        import zarr
    except ImportError as error:
        raise InputError(
            f"{label}: reading or writing .zarr stores needs the optional package zarr, which is "
            f"not installed; install it (pip install 'manylm[zarr]') or use Parquet"
        ) from error
    return zarr


class ZarrBlockSource(BlockSourceBase):
    """A Zarr features x samples matrix (see the module for the layout) read by row chunks.

    Parameters
    ----------
    path : str or path-like
        The ``.zarr`` directory.

    Attributes
    ----------
    path, sample_ids, n_features, dtype, natural_block_rows
        See :class:`~manylm.io.feature_blocks.FeatureBlockSource`; ``natural_block_rows`` is
        the chunk length along the rows.

    Raises
    ------
    InputError
        If the store is not a Zarr group of that layout (the message says what is expected).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._root = Path(path)
        group = self._open()
        values = self._member(group, "values", 2)
        feature_ids = self._member(group, "feature_ids", 1)
        sample_ids = self._member(group, "sample_ids", 1)
        if values.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise InputError(
                f"{self.path}: 'values' has dtype {values.dtype}; it must be float32 or float64 "
                f"(expected {ZARR_LAYOUT})"
            )
        for name, ids in (("feature_ids", feature_ids), ("sample_ids", sample_ids)):
            refuse_non_text_ids(self.path, name, ids.dtype, ZARR_LAYOUT)
        n_features, n_samples = values.shape
        if feature_ids.shape[0] != n_features or sample_ids.shape[0] != n_samples:
            raise InputError(
                f"{self.path}: 'values' is {n_features} x {n_samples} but there are "
                f"{feature_ids.shape[0]} feature IDs and {sample_ids.shape[0]} sample IDs "
                f"(expected {ZARR_LAYOUT})"
            )
        try:
            self.sample_ids = [str(s) for s in decode_ids(sample_ids[:])]
        except Exception as error:  # any decoding failure: a corrupt store
            raise InputError(f"{self.path}: cannot read 'sample_ids': {error}") from error
        _check_sample_ids(self.sample_ids, self.path, "expression")
        self.n_features = int(n_features)
        self.dtype = np.dtype(values.dtype)
        self.natural_block_rows = int(values.chunks[0])
        self._direct_ids = _plain_string_chunks(feature_ids, self.natural_block_rows)
        attributes = dict(group.attrs).get(_ATTRIBUTE, {})
        self._all_chunks_written = bool(isinstance(attributes, dict)
                                        and attributes.get("all_chunks_written"))
        self._state().arrays = (values, feature_ids)

    def _open(self) -> Any:
        zarr = _zarr(self.path)
        try:
            return zarr.open_group(store=self._root, mode="r")
        except Exception as error:  # zarr raises many kinds for "not a group"
            raise InputError(
                f"{self.path}: cannot open as a Zarr group ({type(error).__name__}: {error}); "
                f"expected {ZARR_LAYOUT}"
            ) from error

    def _member(self, group: Any, name: str, ndim: int) -> Any:
        zarr = _zarr(self.path)
        try:
            member = group.get(name)
        except Exception as error:  # its metadata unreadable: zarr raises many kinds
            raise InputError(
                f"{self.path}: cannot read the metadata of {name!r} ({type(error).__name__}: "
                f"{error}); the store is damaged or of a layout manylm does not read: write it "
                f"again (manylm convert)"
            ) from error
        if not isinstance(member, zarr.Array) or member.ndim != ndim:
            found = sorted(group.keys())
            raise InputError(
                f"{self.path}: no {ndim}-D array {name!r} in the store (it holds "
                f"{found or 'nothing'}); expected {ZARR_LAYOUT}"
            )
        return member

    def _arrays(self) -> tuple[Any, Any]:
        state = self._state()
        if "arrays" not in state.__dict__:
            group = self._open()
            state.arrays = (group["values"], group["feature_ids"])
        return state.arrays

    def _load_block(
        self, index: int, start: int, stop: int, positions: NDArray[np.intp] | None
    ) -> tuple[NDArray[np.object_], NDArray[np.floating]]:
        """Feature IDs and values of row chunk ``index``."""
        values, feature_ids = self._arrays()
        if self._all_chunks_written:
            self._check_chunks_exist(values, index)
        try:
            block = values[start:stop]
        except Exception as error:  # codecs raise ValueError, RuntimeError...
            raise self._corrupt(f"chunk {index}", start, stop, error) from error
        try:
            ids = (self._id_chunk(feature_ids, index, stop - start) if self._direct_ids
                   else decode_ids(feature_ids[start:stop]))
        except InputError:
            raise
        except Exception as error:  # the string codec fails in many ways
            raise self._corrupt(f"the feature IDs of chunk {index}", start, stop,
                                error) from error
        if positions is not None:
            block = block[:, positions]
        return ids, block

    def _id_chunk(self, feature_ids: Any, index: int, n_rows: int) -> NDArray[np.object_]:
        """Decode chunk ``index`` of ``feature_ids`` straight from its file.

        Through zarr, strings are decoded to Python objects, converted to numpy's StringDType
        and back to objects here: three times the work of decoding the stored vlen-utf8 codec
        directly, and as long as reading the values of 100 samples.
        """
        import numcodecs

        key = feature_ids.metadata.encode_chunk_key((index,))
        try:
            data = (self._root / "feature_ids" / key).read_bytes()
        except FileNotFoundError:
            if self._all_chunks_written:
                start, stop = self._block_bounds(index)
                raise InputError(
                    f"{self.path}: chunk {index} of 'feature_ids' ({rows_label(start, stop)}) "
                    f"is missing (no file feature_ids/{key}); the store is incomplete: copy or "
                    f"write it again"
                ) from None
            return np.full(n_rows, "", dtype=object)
        if len(feature_ids.metadata.codecs) == 2:  # vlen-utf8 then zstd
            data = numcodecs.Zstd().decode(data)
        ids = numcodecs.VLenUTF8().decode(data)
        if len(ids) < n_rows:
            raise ValueError(f"{len(ids)} IDs stored for {n_rows} rows")
        return ids[:n_rows]

    def _check_chunks_exist(self, values: Any, index: int) -> None:
        n_column_chunks = -(-values.shape[1] // max(1, values.chunks[1]))
        for column in range(n_column_chunks):
            key = values.metadata.encode_chunk_key((index, column))
            if not (self._root / "values" / key).is_file():
                start, stop = self._block_bounds(index)
                raise InputError(
                    f"{self.path}: chunk {index} of 'values' ({rows_label(start, stop)}) is "
                    f"missing (no file values/{key}); the store is incomplete: copy or write it "
                    f"again"
                )


def _plain_string_chunks(feature_ids: Any, chunk_rows: int) -> bool:
    """Whether ``feature_ids`` chunks can be decoded directly: local Zarr v3 vlen-utf8 strings,
    optionally zstd-compressed, chunked like the values (what ``manylm convert`` writes)."""
    metadata = feature_ids.metadata
    if getattr(metadata, "zarr_format", None) != 3 or feature_ids.chunks[0] != chunk_rows:
        return False
    names = [codec.to_dict().get("name") for codec in getattr(metadata, "codecs", ())]
    return names in (["vlen-utf8"], ["vlen-utf8", "zstd"])


class ZarrMatrixWriter:
    """Write a features x samples matrix as a Zarr group of the module's layout, chunk by chunk.

    Parameters
    ----------
    path : pathlib.Path
        The directory to create (a temporary name: the caller renames it when complete).
    sample_ids : list of str
        The samples (columns), in order.
    dtype : numpy.dtype
        float32 or float64.
    chunk_rows : int
        Rows per chunk.
    """

    def __init__(self, path: Path, sample_ids: Sequence[str], dtype: np.dtype,
                 chunk_rows: int) -> None:
        zarr = _zarr(os.fspath(path))
        self.chunk_rows = chunk_rows
        self.dtype = np.dtype(dtype)
        self.n_rows = 0
        self._group = zarr.open_group(store=path, mode="w-")
        self._n_samples = len(sample_ids)
        sample_array = self._group.create_array(
            "sample_ids", shape=(self._n_samples,), chunks=(max(1, self._n_samples),), dtype=str,
        )
        sample_array[:] = np.array(list(sample_ids), dtype=object)
        self._arrays: tuple[Any, Any] | None = None
        self._pending_ids: list[NDArray[np.object_]] = []
        self._pending_values: list[NDArray[np.floating]] = []
        self._pending_rows = 0

    def _create_arrays(self, chunk_rows: int) -> tuple[Any, Any]:
        """Create ``values`` and ``feature_ids`` on the first write of a chunk.

        Zarr stores every chunk at full size, so a matrix smaller than one chunk gets chunks
        of its own size instead of a mostly empty one.
        """
        from zarr.codecs import Crc32cCodec

        if self._arrays is None:
            self.chunk_rows = chunk_rows
            config = {"write_empty_chunks": True}
            # a checksum per chunk, no compression: genomic floats barely compress, and
            # decoding speed is what a streamed fit waits for
            values = self._group.create_array(
                "values", shape=(0, self._n_samples), chunks=(chunk_rows, self._n_samples),
                dtype=self.dtype, fill_value=np.nan, compressors=Crc32cCodec(), config=config,
            )
            feature_ids = self._group.create_array(
                "feature_ids", shape=(0,), chunks=(chunk_rows,), dtype=str, config=config,
            )
            self._arrays = (values, feature_ids)
        return self._arrays

    def write(self, feature_ids: Any, values: NDArray[np.floating]) -> None:
        """Append rows: IDs of shape (n_rows,), values of shape (n_rows, n_samples)."""
        ids = np.asarray(feature_ids.to_numpy(zero_copy_only=False)
                         if hasattr(feature_ids, "to_numpy") else feature_ids, dtype=object)
        self._pending_ids.append(ids)
        self._pending_values.append(np.asarray(values, dtype=self.dtype))
        self._pending_rows += len(ids)
        while self._pending_rows >= self.chunk_rows:
            self._flush(self.chunk_rows)

    def _flush(self, n_rows: int) -> None:
        values_array, ids_array = self._create_arrays(max(1, n_rows))
        ids = np.concatenate(self._pending_ids)
        values = np.concatenate(self._pending_values, axis=0)
        first, last = self.n_rows, self.n_rows + n_rows
        values_array.resize((last, self._n_samples))
        ids_array.resize((last,))
        values_array[first:last] = values[:n_rows]
        ids_array[first:last] = ids[:n_rows]
        self._pending_ids = [ids[n_rows:]] if len(ids) > n_rows else []
        self._pending_values = [values[n_rows:]] if len(ids) > n_rows else []
        self._pending_rows = len(ids) - n_rows
        self.n_rows = last

    def close(self) -> int:
        """Write the last chunk and the layout attribute; return the number of rows written."""
        if self._pending_rows:
            self._flush(self._pending_rows)
        self._create_arrays(max(1, self.n_rows))
        self._group.attrs[_ATTRIBUTE] = {"layout": "features x samples",
                                         "all_chunks_written": True}
        return self.n_rows

    def abort(self) -> None:
        """Nothing to close (the caller deletes the directory)."""
