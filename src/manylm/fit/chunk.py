"""Per-feature results of fitting one chunk of features: the map step of the engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["ChunkFit", "concatenate_chunks"]


@dataclass
class ChunkFit:
    """What fitting a block of features yields; every array has one row per feature.

    Attributes
    ----------
    coefficients : array of shape (n_features, n_coefficients); NaN where not estimable
    stdev_unscaled : array of shape (n_features, n_coefficients)
        Square roots of the diagonal of the unscaled covariance (X'WX)^-1 (limma's
        ``stdev.unscaled``); NaN where not estimable.
    residual_variance : array of shape (n_features,)
        ``sigma^2``; NaN where there are no residual degrees of freedom.
    df_residual : array of shape (n_features,)
    mean : array of shape (n_features,)
        Mean of the observed values (limma's ``Amean``).
    residuals, fitted : arrays of shape (n_features, n_samples), only when asked for.
    """

    coefficients: NDArray[np.floating]
    stdev_unscaled: NDArray[np.floating]
    residual_variance: NDArray[np.floating]
    df_residual: NDArray[np.floating]
    mean: NDArray[np.floating]
    residuals: NDArray[np.floating] | None = None
    fitted: NDArray[np.floating] | None = None

    @property
    def n_features(self) -> int:
        return int(self.coefficients.shape[0])


def concatenate_chunks(chunks: Sequence[ChunkFit], n_coefficients: int) -> ChunkFit:
    """Stack chunk results in feature order."""
    if not chunks:
        empty = np.empty((0, n_coefficients))
        return ChunkFit(empty, empty.copy(), np.empty(0), np.empty(0), np.empty(0))
    if len(chunks) == 1:
        return chunks[0]
    keep_residuals = chunks[0].residuals is not None
    return ChunkFit(
        coefficients=np.concatenate([c.coefficients for c in chunks]),
        stdev_unscaled=np.concatenate([c.stdev_unscaled for c in chunks]),
        residual_variance=np.concatenate([c.residual_variance for c in chunks]),
        df_residual=np.concatenate([c.df_residual for c in chunks]),
        mean=np.concatenate([c.mean for c in chunks]),
        residuals=np.concatenate([c.residuals for c in chunks]) if keep_residuals else None,
        fitted=np.concatenate([c.fitted for c in chunks]) if keep_residuals else None,
    )
