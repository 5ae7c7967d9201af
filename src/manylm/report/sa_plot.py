"""SA plot: residual standard deviation against mean, with the prior (limma's ``plotSA``).

Each feature is a point (mean expression, sqrt(sigma)); the empirical Bayes prior s0^2 is drawn
as sqrt(s0), a flat line or, with ``trend=True``, a curve in the mean. With a robust prior
(``robust=True``, feature-specific prior df) the features whose variance is an outlier in
either direction (two-sided F test, BH FDR <= 0.5, as plotSA) are marked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from manylm.errors import InputError
from manylm.inference.adjust import p_adjust
from manylm.report.canvas import COLORS, axes_for, finish_axes, plot_points
from manylm.report.thinning import (
    DEFAULT_MAX_POINTS,
    describe_thinning,
    drawn_rows,
    extreme_rows,
    thin_curve,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["SATrend", "plot_sa_trend", "sa_trend", "variance_outlier_fdr"]


@dataclass(frozen=True)
class SATrend:
    """Points and prior line of an SA plot.

    Attributes
    ----------
    mean, sqrt_sigma : arrays of shape (n_drawn,)
    outlier : array of bool, shape (n_drawn,)
        Variance outliers under a robust prior (all False otherwise).
    rows : array of int, shape (n_drawn,)
    line_mean, line_sqrt_sigma : arrays
        The prior, sqrt(sqrt(s2_prior)), against the mean (sorted by mean); two points for a
        constant prior, None for an unmoderated fit.
    n, n_drawn, n_outliers : int
    robust : bool
    """

    mean: NDArray[np.float64]
    sqrt_sigma: NDArray[np.float64]
    outlier: NDArray[np.bool_]
    rows: NDArray[np.intp]
    line_mean: NDArray[np.float64] | None
    line_sqrt_sigma: NDArray[np.float64] | None
    n: int
    n_drawn: int
    n_outliers: int
    robust: bool

    @property
    def caption(self) -> str:
        kept = "every variance outlier" if self.robust else "the extremes"
        return describe_thinning(self.n_drawn, self.n, kept)


def sa_trend(result: Any, *, max_points: int = DEFAULT_MAX_POINTS, seed: int = 0) -> SATrend:
    """The SA plot of a moderated fit.

    Parameters
    ----------
    result : ModeratedFit
    max_points : int
        Points drawn at most besides the outliers and the extremes.
    seed : int

    Returns
    -------
    SATrend
    """
    fit = getattr(result, "fit", None)
    if fit is None or not hasattr(fit, "residual_variance"):
        raise InputError(f"sa_trend needs a ModeratedFit; got {type(result).__name__}.")
    mean = np.asarray(fit.mean, dtype=np.float64)
    residual_variance = np.asarray(fit.residual_variance, dtype=np.float64)
    moderated = bool(getattr(result, "moderated", True))
    s2_prior = np.asarray(result.s2_prior, dtype=np.float64) if moderated else None
    df_prior = np.asarray(result.df_prior, dtype=np.float64) if moderated else None
    return _sa_trend(mean, residual_variance, np.asarray(fit.df_residual, dtype=np.float64),
                     s2_prior, df_prior, max_points, seed)


def variance_outlier_fdr(residual_variance: NDArray[np.float64],
                         df_residual: NDArray[np.float64], s2_prior: NDArray[np.float64],
                         df_prior: NDArray[np.float64]) -> NDArray[np.float64]:
    """BH FDR of the two-sided F test of each variance against its prior (limma ``plotSA``).

    The ratio sigma^2 / s2_prior is compared with F(df_residual, max(df_prior)).

    Parameters
    ----------
    residual_variance, df_residual : arrays of shape (n_features,)
    s2_prior, df_prior : float or arrays of shape (n_features,)

    Returns
    -------
    array of shape (n_features,)
    """
    df_denominator = float(np.max(df_prior))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = residual_variance / s2_prior
        usable = df_residual > 0
        df1 = np.where(usable, df_residual, np.nan)
        if np.isinf(df_denominator):  # F(d1, inf) is chi-square(d1) / d1
            lower = stats.chi2.cdf(ratio * df1, df1)
            upper = stats.chi2.sf(ratio * df1, df1)
        else:
            lower = stats.f.cdf(ratio, df1, df_denominator)
            upper = stats.f.sf(ratio, df1, df_denominator)
    return p_adjust(2 * np.minimum(lower, upper), "BH")


def _sa_trend(mean: NDArray[np.float64], residual_variance: NDArray[np.float64],
              df_residual: NDArray[np.float64], s2_prior: NDArray[np.float64] | None,
              df_prior: NDArray[np.float64] | None, max_points: int, seed: int) -> SATrend:
    sqrt_sigma = np.sqrt(np.sqrt(residual_variance))
    present = np.isfinite(mean) & np.isfinite(sqrt_sigma)
    robust = df_prior is not None and df_prior.ndim == 1 and df_prior.size > 1
    outlier = np.zeros(mean.shape, dtype=bool)
    if robust and s2_prior is not None and df_prior is not None:
        outlier = variance_outlier_fdr(residual_variance, df_residual, s2_prior, df_prior) <= 0.5
    extremes = extreme_rows(np.where(present, sqrt_sigma, np.nan), count=100)
    extremes |= extreme_rows(np.where(present, mean, np.nan), count=50)
    rows = drawn_rows(present & (outlier | extremes), present, max_points=max_points, seed=seed)
    line_mean = line_value = None
    if s2_prior is not None:
        line_mean, line_value = _prior_line(mean, s2_prior)
    return SATrend(mean=mean[rows], sqrt_sigma=sqrt_sigma[rows], outlier=outlier[rows],
                   rows=rows, line_mean=line_mean, line_sqrt_sigma=line_value,
                   n=int(present.sum()), n_drawn=int(rows.size),
                   n_outliers=int((outlier & present).sum()), robust=bool(robust))


def _prior_line(mean: NDArray[np.float64], s2_prior: NDArray[np.float64]
                ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    finite_mean = mean[np.isfinite(mean)]
    if s2_prior.ndim == 0 or s2_prior.size == 1:
        low, high = (finite_mean.min(), finite_mean.max()) if finite_mean.size else (0.0, 1.0)
        level = float(np.sqrt(np.sqrt(s2_prior.reshape(-1)[0])))
        return np.array([low, high]), np.array([level, level])
    usable = np.flatnonzero(np.isfinite(mean) & np.isfinite(s2_prior))
    order = thin_curve(usable[np.argsort(mean[usable], kind="stable")])
    return mean[order], np.sqrt(np.sqrt(s2_prior[order]))


def plot_sa_trend(data: SATrend, *, ax: Axes | None = None,
                  title: str = "SA plot: residual sd against mean") -> Figure:
    """Draw sqrt(sigma) against the mean with the prior line (and robust outliers in red).

    Parameters
    ----------
    data : SATrend
    ax : matplotlib Axes, optional
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    figure, axes = axes_for(ax)
    normal = ~data.outlier
    plot_points(axes, data.mean[normal], data.sqrt_sigma[normal], label="features")
    if data.robust:
        plot_points(axes, data.mean[data.outlier], data.sqrt_sigma[data.outlier],
                    label=f"variance outliers ({data.n_outliers:,})", color=COLORS["up"],
                    size=2.5, alpha=None)
    if data.line_mean is not None and data.line_sqrt_sigma is not None:
        axes.plot(data.line_mean, data.line_sqrt_sigma, color=COLORS["line"], linewidth=1.8,
                  label="prior sqrt(s0)")
    finish_axes(axes, xlabel="mean expression", ylabel="sqrt(residual sd)", title=title)
    return figure
