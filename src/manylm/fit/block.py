"""Fit one block of features: the map step of the two-pass engine.

Rows with every value observed go through the dense QR path; rows with a missing value, and all
rows when there is a weights matrix, go through the batched weighted path. The split is by row,
so the result for a feature never depends on which other features share its block. An engine
(today the in-memory one; a streaming or Dask engine would call the same function) only decides
which rows form a block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from manylm.errors import DataError
from manylm.fit.chunk import ChunkFit
from manylm.fit.dense import DenseSolver
from manylm.fit.projection_kernel import DenseRowFit
from manylm.fit.value_scan import first_bad_weight, has_non_finite
from manylm.fit.weighted import fit_observed, fit_weighted

__all__ = ["BlockFitter", "refuse_bad_weights"]


@dataclass(frozen=True)
class BlockFitter:
    """Fits blocks of features against one design (and optional weights).

    Parameters
    ----------
    design : array of shape (n_samples, n_coefficients)
    estimable : bool array of shape (n_coefficients,)
    sample_weights : array of shape (n_samples,), optional
        One weight per sample (limma's array weights).
    dtype : float64 (default) or float32
        Precision of the arithmetic.
    """

    design: NDArray[np.floating]
    estimable: NDArray[np.bool_]
    sample_weights: NDArray[np.floating] | None = None
    dtype: type = np.float64
    _dense: DenseSolver = field(init=False, repr=False)

    def __post_init__(self) -> None:
        solver = DenseSolver.from_design(self.design, self.estimable, self.sample_weights)
        object.__setattr__(self, "_dense", solver)

    @property
    def row_fit(self) -> DenseRowFit | None:
        """The one-read dense fit's view of the design, when it applies (float64 results)."""
        return self._dense.row_fit if self.dtype == np.float64 else None

    @property
    def dense_stdev_unscaled(self) -> NDArray[np.floating]:
        """(p,) unscaled standard deviations of complete rows (NaN where not estimable)."""
        return self._dense.stdev_unscaled

    @property
    def centre_rows(self) -> bool:
        return self._dense.ones_coefficients is not None

    def __call__(
        self,
        y: NDArray[np.floating],
        weights: NDArray[np.floating] | None = None,
        *,
        first_row: int = 0,
        keep_residuals: bool = False,
        feature_ids: object = None,
        sample_ids: object = None,
    ) -> ChunkFit:
        """Fit the rows of ``y``; ``first_row`` is the block's offset, used in error messages."""
        y = np.asarray(y)
        if y.dtype not in (np.float32, np.float64):
            y = y.astype(self.dtype)
        if weights is not None:
            y = y.astype(self.dtype, copy=False)
            weights = np.asarray(weights, dtype=self.dtype)
            refuse_bad_weights(weights, first_row, feature_ids, sample_ids)
            if has_non_finite(y):
                _check_no_infinity(y, first_row, feature_ids, sample_ids)
                weights = np.where(np.isfinite(y), weights, 0.0)
            return self._weighted(y, weights, keep_residuals)
        # The dense path on every row; a row with a missing value shows as a non-finite mean
        # and is refitted on its observed samples. Rows are independent, so the dense results
        # of the complete rows stand.
        # float32 rows are read as they are (the kernel sums in float64): no float64 copy.
        dense = self._dense(y, keep_residuals=keep_residuals, dtype=self.dtype)
        incomplete = ~np.isfinite(dense.mean)
        if not incomplete.any():
            return dense
        rows = np.flatnonzero(incomplete)
        dense.assign(rows, self.fit_incomplete(y, rows, first_row=first_row,
                                               keep_residuals=keep_residuals,
                                               feature_ids=feature_ids, sample_ids=sample_ids))
        return dense

    def fit_incomplete(
        self,
        y: NDArray[np.floating],
        rows: NDArray[np.intp],
        *,
        first_row: int = 0,
        keep_residuals: bool = False,
        feature_ids: object = None,
        sample_ids: object = None,
    ) -> ChunkFit:
        """Rows ``rows`` of ``y``, which have a missing (or infinite) value, each fitted on its
        observed samples.

        ``first_row`` is the offset of ``y`` in the whole matrix (for messages). An infinite
        value is an error naming the feature and sample.
        """
        if self.dtype == np.float64 and not keep_residuals:
            design: NDArray[Any] = self.design.astype(np.float64)
            fit = fit_observed(y, rows, design[:, self.estimable],
                               sample_weights=self.sample_weights, centre_rows=self.centre_rows)
            if fit is not None:
                return self._with_non_estimable(fit)
        subset: NDArray[np.floating] = np.asarray(y[rows]).astype(self.dtype, copy=False)
        _check_no_infinity(subset, first_row, feature_ids, sample_ids, rows)
        return self._weighted(subset, self._observed_weights(np.isfinite(subset)),
                              keep_residuals)

    def _observed_weights(self, finite: NDArray[np.bool_]) -> NDArray[np.floating]:
        if self.sample_weights is None:
            return finite.astype(self.dtype)
        base: NDArray[Any] = self.sample_weights.astype(self.dtype)
        return np.where(finite, base[None, :], 0.0).astype(self.dtype, copy=False)

    def _weighted(
        self, y: NDArray[np.floating], weights: NDArray[np.floating], keep_residuals: bool
    ) -> ChunkFit:
        design: NDArray[Any] = self.design.astype(self.dtype)
        # Non-estimable columns of the whole design can never be estimated for a subset.
        fit = fit_weighted(
            y, weights, design[:, self.estimable], centre_rows=self.centre_rows,
            keep_residuals=keep_residuals,
        )
        return self._with_non_estimable(fit)

    def _with_non_estimable(self, fit: ChunkFit) -> ChunkFit:
        """The fit of the estimable columns, with NaN columns for the others."""
        if self.estimable.all():
            return fit
        n = fit.coefficients.shape[0]
        p = self.estimable.shape[0]
        coefficients = np.full((n, p), np.nan)
        stdev = np.full((n, p), np.nan)
        coefficients[:, self.estimable] = fit.coefficients
        stdev[:, self.estimable] = fit.stdev_unscaled
        fit.coefficients = coefficients
        fit.stdev_unscaled = stdev
        return fit


def _check_no_infinity(y: NDArray[np.floating], first_row: int, feature_ids: object,
                       sample_ids: object, rows: NDArray[np.intp] | None = None) -> None:
    infinite = np.isinf(y)
    if infinite.any():
        row, col = (int(v[0]) for v in np.nonzero(infinite))
        position = first_row + (int(rows[row]) if rows is not None else row)
        raise DataError(
            f"Infinite value in the data at feature {_label(feature_ids, position)}, sample "
            f"{_label(sample_ids, col)}: replace it by a finite value, or by NA to treat it as "
            "missing."
        )


def refuse_bad_weights(weights: NDArray[np.floating], first_row: int, feature_ids: object,
                       sample_ids: object, *, source: str | None = None) -> None:
    """DataError naming the first weight that is missing (NaN), negative or infinite: its
    feature and sample, and ``source`` (the weights file) when given.

    Rows of ``weights`` are features ``first_row`` on (positions in ``feature_ids``).
    """
    bad = first_bad_weight(weights)
    if bad is None:
        return
    row, col = bad
    value = weights[row, col]
    what = "missing" if np.isnan(value) else "negative" if value < 0 else "infinite"
    raise DataError(
        f"{f'{source}: ' if source else ''}feature {_label(feature_ids, first_row + row)}, "
        f"sample {_label(sample_ids, col)}: weight {value} is {what}; weights must be finite "
        "and non-negative (0 leaves the observation out)"
    )


def _label(ids: object, position: int) -> str:
    if ids is None:
        return f"#{position + 1}"
    try:
        return repr(str(ids[position]))  # type: ignore[index]
    except (IndexError, KeyError, TypeError):
        return f"#{position + 1}"
