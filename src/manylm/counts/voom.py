"""voom: precision weights for log-counts from the mean-variance trend (limma's ``voom``).

Law, Chen, Shi & Smyth (2014), "voom: precision weights unlock linear model analysis tools for
RNA-seq read counts", Genome Biology 15:R29. log-CPM values are fitted by the ordinary linear
model; the square root of each gene's residual standard deviation is smoothed against its mean
log-count with ``lowess`` (span 0.5); each observation's weight is the inverse fourth power of
that trend at its fitted log-count.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from manylm.counts.trend_weights import trend_weights
from manylm.design.matrix import Design
from manylm.errors import InputError, ManylmWarning
from manylm.fit.lmfit import lm_fit
from manylm.moderate.lowess import lowess

__all__ = ["VoomResult", "voom"]


@dataclass(frozen=True)
class VoomResult:
    """log-CPM values, their precision weights, and the trend behind them (for plotting).

    Attributes
    ----------
    expression, weights : DataFrame (features x samples)
    lib_size : array of shape (n_samples,)
        Effective library sizes used (library size x normalisation factor).
    trend_x, trend_y : arrays
        Each gene's mean log2 count and square-root residual standard deviation (limma's
        ``voom.xy``); trend_line_x, trend_line_y: the lowess trend (``voom.line``).
    """

    expression: pd.DataFrame
    weights: pd.DataFrame
    lib_size: NDArray[np.float64]
    trend_x: NDArray[np.float64]
    trend_y: NDArray[np.float64]
    trend_line_x: NDArray[np.float64]
    trend_line_y: NDArray[np.float64]
    sample_weights: pd.Series | None = None


def voom(
    counts: pd.DataFrame,
    design: Design,
    *,
    lib_size: ArrayLike | None = None,
    span: float = 0.5,
    sample_weights: ArrayLike | None = None,
) -> VoomResult:
    """Transform counts to log-CPM with observation-level precision weights.

    Parameters
    ----------
    counts : DataFrame, features x samples raw counts (columns in the design's sample order)
    design : Design
    lib_size : array of shape (n_samples,), optional
        Effective library sizes (default: column sums); pass ``sums * norm_factors``.
    span : float
        lowess span of the trend.
    sample_weights : array of shape (n_samples,), optional
        Sample weights for the fit behind the trend (``voom(weights = )``, as
        :func:`voom_with_quality_weights` passes them); the returned weights are voom's alone.
    """
    y_counts = counts.to_numpy(dtype=np.float64, copy=True)
    if y_counts.shape[0] < 2:
        raise InputError("voom needs at least two genes to fit a mean-variance trend.")
    sizes = y_counts.sum(axis=0) if lib_size is None else np.asarray(lib_size, dtype=np.float64)
    observed = y_counts.sum(axis=1) != 0
    # log2((y + 0.5) / (L + 1) * 1e6), in place: fresh arrays of this size cost more in page
    # faults than the arithmetic.
    log_cpm = np.add(y_counts, 0.5, out=y_counts)
    np.log2(log_cpm, out=log_cpm)
    log_cpm += (np.log2(1e6) - np.log2(sizes + 1))[None, :]
    expression = pd.DataFrame(log_cpm, index=counts.index, columns=counts.columns)
    fit = lm_fit(expression, design, weights=sample_weights)
    replicated = int(np.sum(fit.df_residual > 0))
    if replicated < 2:
        warnings.warn("The design has no replication: voom weights set to 1.", ManylmWarning,
                      stacklevel=2)
        ones = pd.DataFrame(1.0, index=counts.index, columns=counts.columns)
        empty = np.empty(0)
        return VoomResult(expression, ones, sizes, empty, empty, empty, empty)
    sx = fit.mean + np.mean(np.log2(sizes + 1)) - np.log2(1e6)
    sy = np.sqrt(fit.sigma)
    sx, sy = sx[observed], sy[observed]
    line_x, line_y = lowess(sx, sy, f=span)
    coefficients = np.where(design.estimable[None, :], fit.coefficients, 0.0)
    # log2(1e-6 * 2^fitted * (L + 1)) without leaving the log scale; the lowess curve is linear
    # between its anchor points, so it is interpolated on those alone.
    offset = np.log2(sizes + 1) - np.log2(1e6)
    knots_x, knots_y = _knots(line_x, line_y)
    weights = trend_weights(coefficients, design.matrix, offset, knots_x, knots_y)
    return VoomResult(
        expression=expression,
        weights=pd.DataFrame(weights, index=counts.index, columns=counts.columns),
        lib_size=sizes, trend_x=sx, trend_y=sy, trend_line_x=line_x, trend_line_y=line_y,
    )


def _knots(x: NDArray[np.float64], y: NDArray[np.float64]
           ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The points of a piecewise-linear curve where its slope changes (and both ends).

    Ties are averaged first (R's ``approxfun(ties = mean)``); a point is dropped when it lies on
    the line through its neighbours to within rounding, which leaves the interpolant unchanged.
    """
    unique_x, inverse = np.unique(x, return_inverse=True)
    unique_y = np.bincount(inverse, weights=y) / np.bincount(inverse)
    if unique_x.size < 3:
        return unique_x, unique_y
    slopes = np.diff(unique_y) / np.diff(unique_x)
    scale = np.abs(unique_y).max() / max(float(np.ptp(unique_x)), 1e-300)
    bend = np.abs(np.diff(slopes)) > 1e-9 * max(scale, 1e-300)
    keep = np.concatenate([[True], bend, [True]])
    return unique_x[keep], unique_y[keep]
