"""Robust estimation of the prior for the residual variances (limma's ``fitFDistRobustly``).

Phipson, Lee, Majewski, Alexander & Smyth (2016), "Robust hyperparameter estimation protects
against hypervariable genes and improves power to detect differential expression", Annals of
Applied Statistics 10(2). The log-variances are Winsorized, the prior df is matched to the
variance of the Winsorized Fisher-z distribution (computed by 128-point Gauss-Legendre
quadrature), and features that look like outliers get their own, smaller prior df.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from manylm.errors import ManylmWarning
from manylm.moderate.fdist import fit_f_dist
from manylm.moderate.interpolation import interpolate_constant_ends
from manylm.moderate.lowess import lowess

__all__ = ["RobustFDistFit", "fit_f_dist_robustly"]

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(128)
_NODES = (_NODES + 1) / 2  # on [0, 1], as statmod::gauss.quad.prob(128, "uniform")
_WEIGHTS = _WEIGHTS / 2


@dataclass(frozen=True)
class RobustFDistFit:
    """Scale s0^2, the global prior df, and the per-feature (shrunk) prior df."""

    scale: float | NDArray[np.float64]
    df2: float
    df2_shrunk: NDArray[np.float64]


def _link(x: float) -> float:
    return x / (1 + x)


def _link_inverse(x: float) -> float:
    return x / (1 - x) if x < 1 else np.inf


def _winsorized_moments(df1: float, df2: float, tail: NDArray[np.float64]) -> tuple[float, float]:
    """Mean and variance of the Winsorized log-F(df1, df2) distribution."""
    from scipy import stats  # imported when used: ~0.3 s
    if np.isinf(df2):
        fq = stats.chi2.ppf([tail[0], 1 - tail[1]], df1) / df1
        density = lambda f: stats.chi2.pdf(f * df1, df1) * df1  # noqa: E731
    else:
        fq = stats.f.ppf([tail[0], 1 - tail[1]], df1, df2)
        density = lambda f: stats.f.pdf(f, df1, df2)  # noqa: E731
    zq = np.log(fq)
    q = fq / (1 + fq)
    nodes = q[0] + (q[1] - q[0]) * _NODES
    fnodes = nodes / (1 - nodes)
    znodes = np.log(fnodes)
    weight = density(fnodes) / (1 - nodes) ** 2
    width = q[1] - q[0]
    mean = width * np.sum(_WEIGHTS * weight * znodes) + np.sum(zq * tail)
    var = width * np.sum(_WEIGHTS * weight * (znodes - mean) ** 2) + np.sum((zq - mean) ** 2 * tail)
    return float(mean), float(var)


def fit_f_dist_robustly(
    x: ArrayLike,
    df1: ArrayLike,
    covariate: ArrayLike | None = None,
    winsor_tail_p: tuple[float, float] = (0.05, 0.1),
) -> RobustFDistFit:
    """Robust scale and prior df for residual variances ``x`` with residual df ``df1``.

    Reproduces limma's ``fitFDistRobustly`` (limma 3.54): returns the scale (a trend in
    ``covariate`` when given, fitted by ``lowess`` with span 0.4), the prior df, and the
    per-feature prior df after shrinking for outliers.
    """
    from scipy import stats  # imported when used: ~0.3 s
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    df1_array = np.broadcast_to(np.asarray(df1, dtype=np.float64), x.shape)
    if n < 2:
        return RobustFDistFit(np.nan, np.nan, np.full(n, np.nan))
    cov = None if covariate is None else np.asarray(covariate, dtype=np.float64)
    if n == 2:
        plain = fit_f_dist(x, df1_array, cov)
        return RobustFDistFit(plain.scale, plain.df2, np.full(n, plain.df2))
    ok = ~np.isnan(x) & np.isfinite(df1_array) & (df1_array > 1e-6)
    if cov is not None:
        ok &= np.isfinite(cov)
    if not ok.all():
        inner = fit_f_dist_robustly(
            x[ok], df1_array[ok], None if cov is None else cov[ok], winsor_tail_p
        )
        shrunk = np.full(n, inner.df2)
        shrunk[ok] = inner.df2_shrunk
        if cov is None:
            scale: float | NDArray[np.float64] = inner.scale
        else:
            scale = np.empty(n)
            scale[ok] = inner.scale
            scale[~ok] = np.exp(
                interpolate_constant_ends(cov[ok], np.log(np.asarray(inner.scale)), cov[~ok])
            )
        return RobustFDistFit(scale, inner.df2, shrunk)

    median = float(np.median(x))
    if median <= 0:
        raise ValueError("Residual variances are mostly <= 0: cannot estimate a robust prior.")
    tiny = x < median * 1e-12
    if tiny.any():
        warnings.warn(
            f"{int(tiny.sum())} very small residual variance(s) offset away from zero.",
            ManylmWarning, stacklevel=3,
        )
        x = np.where(tiny, median * 1e-12, x)
    non_robust = fit_f_dist(x, df1_array, cov)
    tail = np.broadcast_to(np.asarray(winsor_tail_p, dtype=np.float64), (2,)).copy()
    if np.all(tail < 1 / n):
        return RobustFDistFit(non_robust.scale, non_robust.df2, np.full(n, non_robust.df2))

    # Unequal df1: move every variance to the largest df1 by matching tail probabilities.
    df1_max = float(np.max(df1_array))
    smaller = df1_array < df1_max - 1e-14
    if smaller.any():
        s = non_robust.scale if np.ndim(non_robust.scale) == 0 else np.asarray(
            non_robust.scale)[smaller]
        f = x[smaller] / s
        df2 = non_robust.df2
        upper = stats.f.logsf(f, df1_array[smaller], df2)
        lower = stats.f.logcdf(f, df1_array[smaller], df2)
        up = upper < lower
        f = np.where(
            up,
            stats.f.isf(np.exp(upper), df1_max, df2),
            stats.f.ppf(np.exp(lower), df1_max, df2),
        )
        x = x.copy()
        x[smaller] = f * s
    df1_common = df1_max

    z = np.log(x)
    if cov is None:
        ztrend: float | NDArray[np.float64] = float(stats.trim_mean(z, tail[1]))
        zresid = z - ztrend
    else:
        order = np.argsort(cov, kind="stable")
        _, smooth = lowess(cov, z, f=0.4, iterations=3)
        ztrend = np.empty(n)
        ztrend[order] = smooth
        zresid = z - ztrend
    quantiles = np.quantile(zresid, [tail[0], 1 - tail[1]])
    zwins = np.clip(zresid, quantiles[0], quantiles[1])
    zwmean = float(np.mean(zwins))
    zwvar = float(np.mean((zwins - zwmean) ** 2) * n / (n - 1))

    mean_inf, var_inf = _winsorized_moments(df1_common, np.inf, tail)
    fun_inf = np.log(zwvar / var_inf)
    if fun_inf <= 0:
        corrected = ztrend + zwmean - mean_inf
        fstat = np.exp(z - corrected)
        tail_p = stats.chi2.sf(fstat * df1_common, df1_common)
        rank = stats.rankdata(fstat)
        empirical = (n - rank + 0.5) / n
        not_outlier = np.minimum(tail_p / empirical, 1.0)
        shrunk = np.full(n, np.inf)
        outlier = not_outlier < 1
        if outlier.any():
            shrunk[outlier] = not_outlier[outlier] * n * df1_common
            order = np.argsort(tail_p, kind="stable")
            shrunk[order] = np.maximum.accumulate(shrunk[order])
        return RobustFDistFit(_squeeze_scalar(np.exp(corrected)), np.inf, shrunk)

    if np.isinf(non_robust.df2):
        return RobustFDistFit(non_robust.scale, non_robust.df2, np.full(n, non_robust.df2))

    def objective(u: float) -> float:
        return float(np.log(zwvar / _winsorized_moments(df1_common, _link_inverse(u), tail)[1]))

    lower_u = _link(non_robust.df2)
    fun_low = objective(lower_u)
    if fun_low >= 0:
        df2 = non_robust.df2
    else:
        # limma uses uniroot(tol=1e-8); solving tighter lands within that tolerance of R.
        from scipy.optimize import brentq  # robust only: ~0.1 s to import

        root = brentq(objective, lower_u, 1.0, xtol=1e-14, rtol=4 * np.finfo(float).eps)
        df2 = _link_inverse(root)
    mean_df2, _ = _winsorized_moments(df1_common, df2, tail)
    corrected = ztrend + zwmean - mean_df2
    fstat = np.exp(z - corrected)
    log_tail_p = stats.f.logsf(fstat, df1_common, df2)
    rank = stats.rankdata(fstat)
    log_empirical = np.log(n - rank + 0.5) - np.log(n)
    log_not_outlier = np.minimum(log_tail_p - log_empirical, 0.0)
    not_outlier = np.exp(log_not_outlier)
    outlier_prob = -np.expm1(log_not_outlier)
    if np.any(log_not_outlier < 0):
        min_log_tail = float(np.min(log_tail_p))
        if min_log_tail == -np.inf:
            shrunk = not_outlier * df2
        else:
            df2_outlier = np.log(0.5) / min_log_tail * df2
            new_log_tail = stats.f.logsf(np.max(fstat), df1_common, df2_outlier)
            df2_outlier = np.log(0.5) / new_log_tail * df2_outlier
            shrunk = not_outlier * df2 + outlier_prob * df2_outlier
        order = np.argsort(log_tail_p, kind="stable")
        ordered = shrunk[order]
        running = np.cumsum(ordered) / np.arange(1, n + 1)
        imin = int(np.argmin(running))
        ordered[: imin + 1] = running[imin]
        shrunk = np.empty(n)
        shrunk[order] = np.maximum.accumulate(ordered)
    else:
        shrunk = np.full(n, df2)
    return RobustFDistFit(_squeeze_scalar(np.exp(corrected)), df2, shrunk)


def _squeeze_scalar(value: float | NDArray[np.float64]) -> float | NDArray[np.float64]:
    return float(value) if np.ndim(value) == 0 else np.asarray(value)

