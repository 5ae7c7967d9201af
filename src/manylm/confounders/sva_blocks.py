"""Passes over a features x samples matrix in row blocks: nested-model residual sums of squares
and weighted Gram matrices of the centred rows.

Every surrogate-variable computation reduces to these two passes. sva's own code forms
``dat %*% (I - H)`` (a features x samples product per model) and an SVD of a features x samples
matrix; here each pass reads the data once, block by block on every core, and keeps only
per-feature sums and an n x n matrix (Leek & Storey 2007, sec. 2; the Gram trick is the one
``irwsva.build`` itself uses for its eigen-decompositions). Blocks are converted to float64, so
float32 input loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import ThreadpoolController

from manylm.engine.inmemory import default_block_rows, row_blocks
from manylm.parallel import parallel_map

__all__ = [
    "centred_gram",
    "map_row_blocks",
    "nested_residual_sums",
    "orthonormal_chain",
    "projected_residual_gram",
    "single_blas_thread",
    "top_eigenvectors",
]

T = TypeVar("T")

_BLAS: ThreadpoolController | None = None


def single_blas_thread() -> Any:
    """A context in which BLAS and LAPACK run on one thread.

    OpenBLAS's own threads on many small products (or one small eigen-decomposition) cost far
    more than they save; the blocks are spread over the cores by threads instead.
    """
    global _BLAS
    if _BLAS is None:  # inspecting the loaded libraries is slow: once per process
        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def map_row_blocks(function: Callable[[slice], T], n_rows: int, n_samples: int,
                   block_rows: int | None) -> list[T]:
    """``function`` over consecutive row blocks, on every core with one BLAS thread each."""
    blocks = list(row_blocks(n_rows, block_rows or default_block_rows(n_samples)))
    with single_blas_thread():
        return parallel_map(function, blocks)


def orthonormal_chain(models: Sequence[NDArray[np.float64]], *, tol: float = 1e-7
                      ) -> list[NDArray[np.float64]]:
    """Mutually orthogonal bases ``Q_0, Q_1, ...`` with ``span(models[m]) = span(Q_0..Q_m)``.

    Parameters
    ----------
    models : sequence of arrays of shape (n_samples, p_m)
        Nested designs, smallest first: each spans the previous one.
    tol : float
        Relative size below which a leftover direction counts as already spanned.

    Returns
    -------
    list of arrays of shape (n_samples, r_m)
        ``r_m`` is the number of new dimensions model ``m`` adds (0 is possible).
    """
    chain: list[NDArray[np.float64]] = []
    n_samples = models[0].shape[0]
    spanned = np.zeros((n_samples, 0))
    for design in models:
        design = np.asarray(design, dtype=np.float64)
        leftover = design - spanned @ (spanned.T @ design)
        leftover -= spanned @ (spanned.T @ leftover)  # second Gram-Schmidt round for accuracy
        if leftover.shape[1] == 0:
            chain.append(np.zeros((n_samples, 0)))
            continue
        u, s, _ = np.linalg.svd(leftover, full_matrices=False)
        scale = max(float(np.linalg.norm(design, axis=0).max()), np.finfo(float).tiny)
        new = u[:, s > tol * scale]
        chain.append(new)
        spanned = np.hstack([spanned, new])
    return chain


def nested_residual_sums(values: NDArray[np.floating], chain: Sequence[NDArray[np.float64]],
                         *, block_rows: int | None = None) -> NDArray[np.float64]:
    """Residual sums of squares of every feature under each model of a nested chain.

    The largest model's residuals are formed explicitly; each smaller model adds the squared
    effects of the directions it lacks, so no sum is a difference of large numbers.

    Parameters
    ----------
    values : array of shape (n_features, n_samples)
    chain : sequence of arrays of shape (n_samples, r_m)
        From :func:`orthonormal_chain`; model ``m`` spans ``chain[0..m]``.

    Returns
    -------
    array of shape (len(chain), n_features)
        Row ``m`` holds the residual sums of squares under model ``m``.
    """
    n_features, n_samples = values.shape
    widths = [q.shape[1] for q in chain]
    basis = np.hstack(list(chain)) if sum(widths) else np.zeros((n_samples, 0))
    edges = np.cumsum([0, *widths])
    out = np.empty((len(chain), n_features))

    def run(block: slice) -> None:
        y = np.asarray(values[block], dtype=np.float64)
        effects = y @ basis
        residuals = y - effects @ basis.T
        rss = np.einsum("ij,ij->i", residuals, residuals)
        out[-1, block] = rss
        for m in range(len(chain) - 2, -1, -1):
            part = effects[:, edges[m + 1]:edges[m + 2]]
            rss = rss + np.einsum("ij,ij->i", part, part)
            out[m, block] = rss

    map_row_blocks(run, n_features, n_samples, block_rows)
    return out


def centred_gram(values: NDArray[np.floating], row_weights: NDArray[np.float64] | None = None,
                 *, rows: NDArray[np.bool_] | None = None, block_rows: int | None = None
                 ) -> NDArray[np.float64]:
    """``W'W`` with ``W = diag(row_weights) (Y - row means)``, over the selected rows.

    Parameters
    ----------
    values : array of shape (n_features, n_samples)
    row_weights : array of shape (n_features,), optional
        Multiplies each centred row (sva's ``dat * pprob`` then row-centred is exactly this).
    rows : bool array of shape (n_features,), optional
        Rows to include (default: all).

    Returns
    -------
    array of shape (n_samples, n_samples)
    """
    n_features, n_samples = values.shape

    def run(block: slice) -> NDArray[np.float64]:
        y = np.array(values[block], dtype=np.float64)
        keep = None if rows is None else rows[block]
        if keep is not None:
            y = y[keep]
        y -= y.mean(axis=1, keepdims=True)
        if row_weights is not None:
            weights = row_weights[block]
            y *= (weights if keep is None else weights[keep])[:, None]
        return y.T @ y

    parts = map_row_blocks(run, n_features, n_samples, block_rows)
    return np.asarray(sum(parts, np.zeros((n_samples, n_samples))))


def projected_residual_gram(values: NDArray[np.floating], basis: NDArray[np.float64], *,
                            block_rows: int | None = None) -> NDArray[np.float64]:
    """``R'R`` for the residuals ``R = Y (I - Q Q')`` from an orthonormal basis ``Q``.

    The residuals are formed block by block (not ``(I - H) Y'Y (I - H)``, which would lose the
    digits that a large mean takes in ``Y'Y``).

    Parameters
    ----------
    values : array of shape (n_features, n_samples)
    basis : array of shape (n_samples, r), orthonormal columns

    Returns
    -------
    array of shape (n_samples, n_samples)
    """
    n_features, n_samples = values.shape

    def run(block: slice) -> NDArray[np.float64]:
        y = np.asarray(values[block], dtype=np.float64)
        residuals = y - (y @ basis) @ basis.T
        return residuals.T @ residuals

    parts = map_row_blocks(run, n_features, n_samples, block_rows)
    return np.asarray(sum(parts, np.zeros((n_samples, n_samples))))


def top_eigenvectors(gram: NDArray[np.float64], k: int
                     ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The ``k`` leading eigenvectors of a symmetric matrix (decreasing eigenvalues), signed.

    The right singular vectors of ``W`` are the eigenvectors of ``W'W``. Each vector's sign is
    fixed so that its largest-magnitude entry is positive (R's LAPACK sign is arbitrary too).

    Returns
    -------
    vectors : array of shape (n, k)
    eigenvalues : array of shape (n,), all of them, decreasing
    """
    with single_blas_thread():
        eigenvalues, vectors = np.linalg.eigh((gram + gram.T) / 2)
    eigenvalues, vectors = eigenvalues[::-1], vectors[:, ::-1]
    top = vectors[:, :k].copy()
    if k:
        pivots = np.argmax(np.abs(top), axis=0)
        top *= np.sign(top[pivots, np.arange(k)])[None, :]
    return top, eigenvalues
