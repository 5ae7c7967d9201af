"""Fit a scaled F distribution to residual variances (limma's ``fitFDist``).

Moment estimation on the log scale (Smyth 2004, section 6.2): if s_g^2 ~ s0^2 F(d_g, d0), then
E[log s_g^2] and Var[log s_g^2] are digamma/trigamma expressions in d_g and d0, which give d0
through the inverse trigamma function and s0^2 from the mean. With a covariate (``trend``), the
mean of the log-variances is a natural cubic spline in the covariate, with limma's rule for its
degrees of freedom.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import digamma

from manylm.errors import ManylmWarning
from manylm.moderate.distinct_values import broadcast_value, distinct_values
from manylm.moderate.natural_spline import NaturalSpline
from manylm.moderate.special import trigamma, trigamma_inverse
from manylm.parallel import parallel_slices

__all__ = ["FDistFit", "fit_f_dist"]


@dataclass(frozen=True)
class FDistFit:
    """Scale (s0^2; one per feature with a covariate) and prior df (d0, may be infinite)."""

    scale: float | NDArray[np.float64]
    df2: float


def fit_f_dist(
    x: ArrayLike, df1: ArrayLike, covariate: ArrayLike | None = None
) -> FDistFit:
    """Estimate the scale and denominator df of a scaled F distribution of ``x``.

    Parameters
    ----------
    x : array of shape (n,)
        Residual variances; non-finite or negative ones, and those with ``df1`` of 0, are left
        out of the estimation.
    df1 : float or array of shape (n,)
        Residual degrees of freedom.
    covariate : array of shape (n,), optional
        Estimate a trend of the scale in this covariate (limma's ``trend=TRUE`` uses Amean).
        Non-finite covariate values are not used for the fit and get the trend at the nearest
        end (limma refuses NaN; this implementation extends it).
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if n == 0:
        return FDistFit(np.nan, np.nan)
    if n == 1:
        return FDistFit(float(x[0]), 0.0)
    df1_array = np.asarray(df1, dtype=np.float64)
    constant = broadcast_value(df1_array)
    if constant is not None:
        df1_array = np.asarray(constant)
    scalar_df = df1_array.ndim == 0
    if scalar_df and covariate is None and np.isfinite(df1_array) and df1_array > 1e-15:
        moments = _log_moments(x)
        fast = None if moments is None else _from_log_moments(*moments, float(df1_array))
        if fast is not None:
            return fast
    elif not scalar_df and covariate is None and df1_array.shape == x.shape:
        fast = _from_moments_by_df(x, df1_array)
        if fast is not None:
            return fast
    ok = np.isfinite(df1_array) & (df1_array > 1e-15)
    if scalar_df:
        if not bool(ok):
            return FDistFit(np.nan, np.nan)
        ok = np.ones(n, dtype=bool)
    cov: NDArray[np.float64] | None = None
    if covariate is not None:
        cov = np.asarray(covariate, dtype=np.float64).copy()
        finite_cov = np.isfinite(cov)
        if not finite_cov.all():
            if finite_cov.any():
                low, high = np.min(cov[finite_cov]), np.max(cov[finite_cov])
                cov[cov == -np.inf] = low - 1
                cov[cov == np.inf] = high + 1
                cov[np.isnan(cov)] = low - 1
            else:
                cov = np.sign(np.nan_to_num(cov))
    ok = ok & np.isfinite(x) & (x > -1e-15)
    n_ok = int(ok.sum())
    if n_ok == 1:
        return FDistFit(float(x[ok][0]), 0.0)
    all_ok = n_ok == n
    x_ok = x if all_ok else x[ok]
    df1_ok = df1_array if scalar_df or all_ok else df1_array[ok]
    if not scalar_df and df1_ok.size and np.all(df1_ok == df1_ok.flat[0]):
        df1_ok = df1_ok.flat[0]  # one df for every feature (no missing values): a scalar
    if cov is not None:
        cov_ok = cov if all_ok else cov[ok]
        spline_df = 1 + (n_ok >= 3) + (n_ok >= 6) + (n_ok >= 30)
        spline_df = min(spline_df, len(np.unique(cov_ok)))
        if spline_df < 2:
            plain = fit_f_dist(x_ok, df1_ok)
            return FDistFit(np.full(n, plain.scale), plain.df2)
    x_ok = np.maximum(x_ok, 0.0)
    median = float(np.median(x_ok))
    if median == 0:
        warnings.warn(
            "More than half of the residual variances are exactly zero: the moderated "
            "statistics are unreliable.", ManylmWarning, stacklevel=3,
        )
        median = 1.0
    elif np.any(x_ok == 0):
        warnings.warn(
            "Zero residual variances detected; they have been offset away from zero.",
            ManylmWarning, stacklevel=3,
        )
    x_ok = np.maximum(x_ok, 1e-5 * median)
    z = np.log(x_ok)
    e = z - (_per_distinct(digamma, df1_ok / 2) - np.log(df1_ok / 2))
    if cov is None:
        emean: float | NDArray[np.float64] = float(np.mean(e))
        evar = float(np.sum((e - emean) ** 2) / (n_ok - 1))
    else:
        spline = NaturalSpline.fit(cov_ok, spline_df)
        basis = spline.evaluate(cov_ok)
        coef, _, rank, _ = np.linalg.lstsq(basis, e, rcond=None)
        fitted = basis @ coef
        evar = float(np.sum((e - fitted) ** 2) / (n_ok - rank))
        emean = np.empty(n)
        emean[ok] = fitted
        if n_ok < n:
            emean[~ok] = spline.evaluate(cov[~ok]) @ coef
    evar = evar - float(np.mean(_per_distinct(trigamma, df1_ok / 2)))
    if evar > 0:
        df2 = float(2 * trigamma_inverse(evar))
        scale = np.exp(emean + digamma(df2 / 2) - np.log(df2 / 2))
    else:
        df2 = np.inf
        scale = float(np.mean(x_ok)) if cov is None else np.exp(emean)
    if np.ndim(scale) == 0:
        scale = float(scale)
    return FDistFit(scale, df2)


def _from_log_moments(n_ok: int, mean_z: float, var_z: float, df1: float) -> FDistFit | None:
    """The moment estimates from the mean and variance of the log-variances (one df).

    None when d0 is infinite (the general path then takes the mean of the variances).
    """
    emean = mean_z - (float(digamma(df1 / 2)) - np.log(df1 / 2))
    evar = var_z - float(trigamma(df1 / 2))
    if evar > 0:
        df2 = float(2 * trigamma_inverse(evar))
        return FDistFit(float(np.exp(emean + digamma(df2 / 2) - np.log(df2 / 2))), df2)
    return None


def _from_moments_by_df(x: NDArray[np.float64], df1: NDArray[np.float64]) -> FDistFit | None:
    """The moment estimates in one pass when the df take a few distinct values (missing values).

    The same estimates as the general path: the mean and variance of
    ``e = log(x) - digamma(df / 2) + log(df / 2)`` and the mean of ``trigamma(df / 2)`` over
    the usable features, with the digamma and trigamma terms computed once per distinct df.
    None when the general path must run: too many distinct df, fewer than two usable values,
    a zero or a value that limma would offset (as :func:`_log_moments`), or infinite d0.
    """
    distinct, labels, _ = distinct_values(df1, _MOST_DISTINCT)
    if distinct.size == 0:
        return None
    usable = np.isfinite(distinct) & (distinct > 1e-15)
    half = np.where(usable, distinct, 1.0) / 2
    offset = np.where(usable, digamma(half) - np.log(half), np.nan)
    variance_term = np.where(usable, trigamma(half), np.nan)
    shift = 0.0
    for value, label in zip(x[:64], labels[:64], strict=False):
        if np.isfinite(value) and value > 0 and usable[label]:
            shift = float(np.log(value) - offset[label])
            break
    found: dict[int, tuple[Any, ...]] = {}

    def run(part: slice) -> None:
        found[part.start] = _offset_log_sums(x[part], labels[part], usable, offset, shift)

    parallel_slices(run, x.shape[0], min_items=100_000)
    parts = [found[start] for start in sorted(found)]  # summed in slice order: reproducible
    moments = _combined(parts)
    if moments is None:
        return None
    n_ok, mean, evar = moments
    counts = np.sum([p[5] for p in parts], axis=0)
    evar -= float(np.sum(counts[usable] * variance_term[usable])) / n_ok
    if evar <= 0:
        return None
    df2 = float(2 * trigamma_inverse(evar))
    emean = shift + mean
    return FDistFit(float(np.exp(emean + digamma(df2 / 2) - np.log(df2 / 2))), df2)


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz"})
def _offset_log_sums(x, labels, usable, offset, shift):
    """As :func:`_log_sums` over the features whose df label is usable, of ``log x`` less its
    df's offset, with the count of features per df label."""
    n = 0.0
    low = np.inf
    high = -np.inf
    s1 = 0.0
    s2 = 0.0
    counts = np.zeros(usable.shape[0])
    for i in range(x.shape[0]):
        value = x[i]
        label = labels[i]
        if usable[label] and np.isfinite(value) and value > -1e-15:
            n += 1.0
            counts[label] += 1.0
            v = max(value, 0.0)
            low = min(low, v)
            high = max(high, v)
            if v > 0:
                z = np.log(v) - offset[label] - shift
                s1 += z
                s2 += z * z
    return n, low, high, s1, s2, counts


def _log_moments(x: NDArray[np.float64]) -> tuple[int, float, float] | None:
    """(count, mean, variance) of log(x) over the usable x, in one pass on every core.

    None when the general path must run instead: fewer than two usable values, a zero, or a
    value small enough (below 1e-5 of the largest, so possibly of the median) that limma would
    offset it.
    """
    shift = 0.0
    for value in x[:64]:
        if np.isfinite(value) and value > 0:
            shift = float(np.log(value))
            break
    found: dict[int, tuple[Any, ...]] = {}

    def run(part: slice) -> None:
        found[part.start] = _log_sums(x[part], shift)

    parallel_slices(run, x.shape[0], min_items=100_000)
    # summed in slice order, not in the order the threads finish: the same bits every run
    moments = _combined([found[start] for start in sorted(found)])
    if moments is None:
        return None
    n_ok, mean, var = moments
    return n_ok, shift + mean, var


def _combined(parts: list[tuple[Any, ...]]) -> tuple[int, float, float] | None:
    """(count, mean, variance) from the parts' (count, min, max, sum, sum of squares, ...) of
    the shifted log-variances; None when the general path must run (see :func:`_log_moments`).
    """
    n_ok = sum(p[0] for p in parts)
    low = min(p[1] for p in parts)
    high = max(p[2] for p in parts)
    if n_ok < 2 or not (low > 0 and low >= 1e-5 * high):
        return None
    s1 = sum(p[3] for p in parts)
    s2 = sum(p[4] for p in parts)
    mean = s1 / n_ok
    return int(n_ok), mean, (s2 - s1 * mean) / (n_ok - 1)


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz"})
def _log_sums(x, shift):
    """Count, min, max and shifted sums of log x and its square over finite x > -1e-15."""
    n = 0.0
    low = np.inf
    high = -np.inf
    s1 = 0.0
    s2 = 0.0
    for value in x:
        if np.isfinite(value) and value > -1e-15:
            n += 1.0
            v = max(value, 0.0)
            low = min(low, v)
            high = max(high, v)
            if v > 0:
                z = np.log(v) - shift
                s1 += z
                s2 += z * z
    return n, low, high, s1, s2


#: Up to this many distinct df are found by a linear scan instead of a sort.
_MOST_DISTINCT = 64


def _per_distinct(function: Any, values: Any) -> Any:
    """``function(values)`` evaluated once per distinct value (df take few distinct values)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 0:
        return function(values)
    if values.size and np.all(values == values.flat[0]):
        return np.full(values.shape, function(values.flat[0]))
    if values.ndim == 1:  # a handful of df (missing values): no sort needed
        distinct, labels, _ = distinct_values(values, _MOST_DISTINCT)
        if distinct.size:
            return np.asarray(function(distinct))[labels]
    distinct, inverse = np.unique(values, return_inverse=True)
    return np.asarray(function(distinct))[inverse.reshape(values.shape)]
