"""Local false discovery rates of many p-values, as sva's ``edge.lfdr``.

The p-values are mapped to z = qnorm(p); their density f(z) is estimated by a Gaussian kernel
density (R's ``density``: Silverman's bandwidth times 1.5, linear binning on 512 points, FFT
convolution) smoothed by a cubic smoothing spline (R's ``smooth.spline``, GCV); then
``lfdr = pi0 phi(z) / f(z)`` with ``pi0`` Storey's estimate at lambda = 0.8, capped at 1 and made
monotone in p (Efron et al. 2001; Storey & Tibshirani 2003; sva's ``edge.lfdr``).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import special

from manylm.errors import DataError
from manylm.inference.quantile import type7_quantile
from manylm.inference.smoothing_spline import smooth_spline

__all__ = ["edge_lfdr", "kernel_density"]

_GRID = 512  # R's density(n = 512): also its FFT grid
_CUT = 3.0  # the grid extends cut * bandwidth beyond the data


def edge_lfdr(p_values: NDArray[np.float64], *, lambda_: float = 0.8, adjust: float = 1.5,
              eps: float = 1e-8) -> NDArray[np.float64]:
    """Local false discovery rate of each p-value (sva's ``edge.lfdr``, probit transform).

    Parameters
    ----------
    p_values : array of shape (n,)
        Finite p-values in [0, 1].
    lambda_ : float
        Storey's pi0 is the fraction of p-values >= lambda_, over 1 - lambda_ (capped at 1).
    adjust : float
        Multiplies the kernel bandwidth (sva uses 1.5).
    eps : float
        p-values are clipped to [eps, 1 - eps] before the probit transform.

    Returns
    -------
    array of shape (n,)
        Local fdr, capped at 1 and non-decreasing in p (as R, a fitted density that dips below
        zero in a tail is not corrected: those values stay as computed).
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.size < 2 or not np.all(np.isfinite(p)):
        raise DataError("edge.lfdr needs at least two finite p-values.")
    pi0 = min(float(np.mean(p >= lambda_)) / (1.0 - lambda_), 1.0)
    clipped = np.clip(p, eps, 1.0 - eps)
    z = special.ndtri(clipped)
    grid, density = kernel_density(z, adjust=adjust)
    fitted = smooth_spline(grid, density).predict(z)
    with np.errstate(divide="ignore", invalid="ignore"):
        lfdr = pi0 * (np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)) / fitted
    lfdr[lfdr > 1] = 1.0
    # Running maximum in order of p; tied p-values share z and so their lfdr: ties need no
    # special care (R indexes by truncated average ranks, which lands in the same tie block).
    order = np.argsort(clipped, kind="stable")
    monotone = np.maximum.accumulate(lfdr[order])
    out = np.empty_like(lfdr)
    out[order] = monotone
    return out


def kernel_density(x: NDArray[np.float64], *, adjust: float = 1.0
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Gaussian kernel density on 512 points, as R's ``density(x, adjust = adjust)``.

    Bandwidth ``adjust * bw.nrd0(x)`` (Silverman 1986, eq. 3.31); the data are binned linearly
    on a grid spanning ``range(x) +- 7 bw``, convolved with the kernel by FFT, and interpolated
    linearly onto 512 points from ``min(x) - 3 bw`` to ``max(x) + 3 bw``.

    Parameters
    ----------
    x : array of shape (n,), finite, n >= 2

    Returns
    -------
    grid, density : arrays of shape (512,)
    """
    n_points = x.shape[0]
    bandwidth = adjust * _bandwidth_nrd0(x)
    if not bandwidth > 0:
        raise DataError("The kernel density bandwidth is not positive.")
    start = float(np.min(x)) - _CUT * bandwidth
    stop = float(np.max(x)) + _CUT * bandwidth
    low, high = start - 4.0 * bandwidth, stop + 4.0 * bandwidth
    counts = _linear_binning(x, np.full(n_points, 1.0 / n_points), low, high, _GRID)
    lags = _r_seq(0.0, 2.0 * (high - low), 2 * _GRID)
    lags[_GRID + 1:] = -lags[_GRID - 1:0:-1]
    kernel = np.exp(-0.5 * (lags / bandwidth) ** 2) / (bandwidth * math.sqrt(2.0 * math.pi))
    smoothed = np.fft.ifft(np.fft.fft(counts) * np.conj(np.fft.fft(kernel))).real
    values = np.maximum(smoothed[:_GRID], 0.0)
    grid = _r_seq(start, stop, _GRID)
    return grid, _interpolate(_r_seq(low, high, _GRID), values, grid)


def _bandwidth_nrd0(x: NDArray[np.float64]) -> float:
    """Silverman's rule of thumb, ``bw.nrd0``: 0.9 min(sd, IQR / 1.34) n^-1/5."""
    n = x.shape[0]
    sd = float(np.std(x, ddof=1))
    # type7_quantile reads only the order statistics at floor/ceil of 1 + (n - 1) p: a
    # partition at those positions puts the right values there without a full sort.
    positions = sorted({math.floor(1 + (n - 1) * q) - 1 for q in (0.25, 0.75)}
                       | {math.ceil(1 + (n - 1) * q) - 1 for q in (0.25, 0.75)})
    ordered = np.partition(x, positions)
    iqr = type7_quantile(ordered, 0.75) - type7_quantile(ordered, 0.25)
    low = min(sd, iqr / 1.34)
    if not low:
        low = sd or abs(float(x[0])) or 1.0
    return 0.9 * low * n ** -0.2


def _linear_binning(x: NDArray[np.float64], weights: NDArray[np.float64], low: float,
                    high: float, n_bins: int) -> NDArray[np.float64]:
    """R's ``BinDist``: each point's weight split between its two neighbouring grid points.

    Returns an array of length ``2 n_bins`` (the upper half stays zero: FFT padding).
    """
    delta = (high - low) / (n_bins - 1)
    position = (x - low) / delta
    index = np.floor(position).astype(np.int64)
    fraction = position - index
    out = np.zeros(2 * n_bins)
    inside = (index >= 0) & (index <= n_bins - 2)
    out += np.bincount(index[inside], weights=weights[inside] * (1 - fraction[inside]),
                       minlength=2 * n_bins)
    out += np.bincount(index[inside] + 1, weights=weights[inside] * fraction[inside],
                       minlength=2 * n_bins)
    left = index == -1
    out[0] += float(np.sum(weights[left] * fraction[left]))
    right = index == n_bins - 1
    out[n_bins - 1] += float(np.sum(weights[right] * (1 - fraction[right])))
    return out


def _r_seq(start: float, stop: float, length: int) -> NDArray[np.float64]:
    """R's ``seq.int(start, stop, length.out = length)``: start + i by, the last exactly stop."""
    out = start + np.arange(length, dtype=np.float64) * ((stop - start) / (length - 1))
    out[-1] = stop
    return out


def _interpolate(x: NDArray[np.float64], y: NDArray[np.float64], at: NDArray[np.float64]
                 ) -> NDArray[np.float64]:
    """R's ``approx(x, y, at)$y`` for increasing ``x`` and ``at`` inside its range."""
    left = np.clip(np.searchsorted(x, at, side="right") - 1, 0, x.shape[0] - 2)
    right = left + 1
    out = y[left] + (y[right] - y[left]) * ((at - x[left]) / (x[right] - x[left]))
    out = np.where(at == x[right], y[right], out)
    return np.asarray(np.where(at == x[left], y[left], out), dtype=np.float64)
