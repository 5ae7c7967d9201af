"""AnnData (``.h5ad``) matrices read a block of features at a time, in backed mode.

AnnData stores samples (observations) x features (variables). The file is opened with
``anndata.read_h5ad(path, backed="r")``, which keeps ``X`` on disk; a block of features is the
slice ``X[:, start:stop]``, transposed to features x samples. A dense ``X`` (best chunked along
the features) or a CSC sparse ``X`` is read piece by piece; a CSR sparse ``X`` (stored by
sample) has to be read whole for every block, which is warned about. Sparse entries that are
not stored are zeros, as in AnnData. Integer ``X`` (counts) is read as float64.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from manylm.errors import DataError, InputError, ManylmWarning
from manylm.io._matrix_checks import _check_sample_ids
from manylm.io.block_sources import BlockSourceBase, block_rows_for_bytes

__all__ = ["AnnDataBlockSource"]


def _anndata(label: str) -> Any:
    try:
        import anndata
    except ImportError as error:
        raise InputError(
            f"{label}: reading .h5ad files needs the optional package anndata, which is not "
            f"installed; install it (pip install 'manylm[anndata]') or convert the matrix to "
            f"Parquet"
        ) from error
    return anndata


class AnnDataBlockSource(BlockSourceBase):
    """A backed AnnData file read as features x samples blocks.

    Parameters
    ----------
    path : str or path-like
        The ``.h5ad`` file.

    Attributes
    ----------
    path, sample_ids, n_features, dtype, natural_block_rows
        See :class:`~manylm.io.feature_blocks.FeatureBlockSource`. ``sample_ids`` are the
        ``obs_names``; feature IDs are the ``var_names``; ``dtype`` is float32 for a float32
        ``X``, float64 otherwise; ``natural_block_rows`` is the chunk length of ``X`` along the
        features (about 32 MB of features when ``X`` is contiguous or sparse).

    Raises
    ------
    InputError
        If anndata is not installed, or the file cannot be opened as AnnData or has no ``X``.
    DataError
        If ``X`` is not numeric.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._file_path = Path(path)
        adata = self._open()
        try:
            x = adata.X
        except KeyError:  # backed mode looks X up in the file
            x = None
        if x is None:
            raise InputError(f"{self.path}: the AnnData file has no X matrix; store the values "
                             f"in X (layers are not read)")
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
            raise DataError(f"{self.path}: X has dtype {x.dtype}; expression values must be "
                            f"numbers")
        n_samples, n_features = x.shape
        self.sample_ids = [str(s) for s in adata.obs_names]
        _check_sample_ids(self.sample_ids, self.path, "expression")
        self.n_features = int(n_features)
        self.dtype = np.dtype(np.float32 if x.dtype == np.float32 else np.float64)
        chunks = getattr(x, "chunks", None)
        self.natural_block_rows = (int(chunks[1]) if chunks
                                   else block_rows_for_bytes(n_samples, self.dtype.itemsize))
        if getattr(x, "format", None) == "csr":
            warnings.warn(
                f"{self.path}: X is stored as CSR sparse (by sample), so every block of "
                f"features reads the whole matrix; store X dense or as CSC, or convert the file "
                f"once (manylm convert {self.path} OUT.zarr), for streamed runs",
                ManylmWarning, stacklevel=2,
            )
        self._state().adata = adata

    def _open(self) -> Any:
        anndata = _anndata(self.path)
        try:
            return anndata.read_h5ad(self._file_path, backed="r")
        except (OSError, KeyError, ValueError, TypeError) as error:
            raise InputError(
                f"{self.path}: cannot open as AnnData (.h5ad) ({error}); it is not AnnData or "
                f"it is truncated"
            ) from error

    def _adata(self) -> Any:
        state = self._state()
        if "adata" not in state.__dict__:
            state.adata = self._open()
        return state.adata

    def _load_block(
        self, index: int, start: int, stop: int, positions: NDArray[np.intp] | None
    ) -> tuple[NDArray[np.object_], NDArray[np.floating]]:
        """Feature IDs and values (features x selected samples) of features ``start:stop``."""
        adata = self._adata()
        try:
            piece = adata.X[:, start:stop]
        except (OSError, ValueError, RuntimeError, KeyError) as error:
            raise self._corrupt(f"chunk {index} of X", start, stop, error) from error
        if hasattr(piece, "toarray"):
            piece = piece.toarray()
        piece = np.asarray(piece)
        if positions is not None:
            piece = piece[positions]
        if piece.dtype != self.dtype:
            piece = piece.astype(self.dtype)
        ids = np.asarray(adata.var_names[start:stop]).astype(str).astype(object)
        return ids, piece.T
