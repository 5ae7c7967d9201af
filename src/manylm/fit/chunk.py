"""Per-feature results of fitting one chunk of features: the map step of the engine."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["ChunkFit"]


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

    ``stdev_unscaled`` and ``df_residual`` may be one row broadcast to every feature (a
    read-only view: the dense path, where they depend on the design only).
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

    def assign(self, rows: slice | NDArray[np.intp], other: ChunkFit) -> None:
        """Overwrite the given rows with the results in ``other`` (same fields kept).

        A field held as one row broadcast to every feature (read-only) is made a full array
        first.
        """
        for name in _ROW_FIELDS:
            target, source = getattr(self, name), getattr(other, name)
            if target is None or source is None:
                continue
            if not target.flags.writeable:
                target = np.array(target)
                setattr(self, name, target)
            target[rows] = source


_ROW_FIELDS = ("coefficients", "stdev_unscaled", "residual_variance", "df_residual", "mean",
               "residuals", "fitted")
