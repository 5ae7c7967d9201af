"""The distribution of p-values: a histogram with the null level pi0, and a QQ plot.

Under the null hypothesis p-values are uniform, so the histogram of a well-behaved analysis is
flat at height pi0 (the proportion of true nulls, Storey & Tibshirani 2003, as drawn by qvalue's
``hist.qvalue``) with a peak near 0 from the true effects. The QQ plot compares sorted -log10 p
with the uniform's expected order statistics; the genomic inflation factor (Devlin & Roeder
1999) summarises how far the bulk departs from the diagonal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from manylm.errors import InputError
from manylm.report.canvas import COLORS, axes_for
from manylm.report.thinning import DEFAULT_MAX_POINTS, describe_thinning, thin_ranks

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["PValueHistogram", "PValueQQ", "plot_pvalue_histogram", "plot_pvalue_qq",
           "pvalue_histogram", "pvalue_qq"]

_BAND_KNOTS = 400


@dataclass(frozen=True)
class PValueHistogram:
    """Counts of p-values in equal bins of [0, 1].

    Attributes
    ----------
    edges : array of shape (n_bins + 1,)
    counts : array of int, shape (n_bins,)
    density : array of shape (n_bins,)
        ``counts / (n * bin width)``: 1 everywhere for uniform p-values.
    n : int
        Finite p-values counted.
    n_missing : int
        NaN p-values (not counted).
    pi0 : float or None
        Estimated proportion of true nulls, drawn as a horizontal line at that density.
    """

    edges: NDArray[np.float64]
    counts: NDArray[np.int64]
    density: NDArray[np.float64]
    n: int
    n_missing: int
    pi0: float | None


def pvalue_histogram(p_values: ArrayLike, *, pi0: float | None = None,
                     n_bins: int = 20) -> PValueHistogram:
    """Histogram of p-values on [0, 1] with the null level pi0.

    Parameters
    ----------
    p_values : array of shape (n_features,)
        NaN is allowed (counted in ``n_missing``).
    pi0 : float, optional
        Proportion of true nulls, e.g. ``qvalue(p).pi0``.
    n_bins : int
        Number of equal bins (default 20, width 0.05).

    Returns
    -------
    PValueHistogram
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    finite = p[~np.isnan(p)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        bad = finite[(finite < 0) | (finite > 1)][0]
        raise InputError(f"p-values must lie in [0, 1]; found {bad!r}.")
    if n_bins < 2:
        raise InputError(f"The 'n_bins' parameter must be >= 2. Got {n_bins}.")
    if pi0 is not None and not 0 <= pi0 <= 1:
        raise InputError(f"The 'pi0' parameter must be in [0, 1]. Got {pi0}.")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts = _bin_counts(finite, n_bins)
    width = 1.0 / n_bins
    density = counts / (max(finite.size, 1) * width)
    return PValueHistogram(edges=edges, counts=counts, density=density, n=int(finite.size),
                           n_missing=int(p.size - finite.size),
                           pi0=None if pi0 is None else float(pi0))


def _bin_counts(p: NDArray[np.float64], n_bins: int) -> NDArray[np.int64]:
    # Bins [a, b) except the last, which includes 1 (as numpy.histogram).
    index = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    return np.bincount(index, minlength=n_bins).astype(np.int64)


def plot_pvalue_histogram(histogram: PValueHistogram, *, ax: Axes | None = None,
                          title: str = "p-value histogram") -> Figure:
    """Bars of the p-value density with a dashed line at pi0 (qvalue's ``hist``).

    Parameters
    ----------
    histogram : PValueHistogram
    ax : matplotlib Axes, optional
        Draw here instead of on a new figure.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    figure, axes = axes_for(ax)
    widths = np.diff(histogram.edges)
    axes.bar(histogram.edges[:-1], histogram.density, width=widths, align="edge",
             color="#9ecae1", edgecolor="#3182bd", linewidth=0.5, label="p-values")
    axes.axhline(1.0, color=COLORS["band"], linewidth=1, linestyle=":",
                 label="uniform (all null)")
    if histogram.pi0 is not None:
        axes.axhline(histogram.pi0, color=COLORS["up"], linewidth=1.5, linestyle="--",
                     label=f"pi0 = {histogram.pi0:.3f}")
    axes.set_xlim(0, 1)
    axes.set_xlabel("p-value")
    axes.set_ylabel("density")
    axes.set_title(title, loc="left")
    axes.legend(loc="upper right", frameon=False, fontsize="small")
    return figure


@dataclass(frozen=True)
class PValueQQ:
    """Observed against expected -log10 p-values (thinned for drawing).

    Attributes
    ----------
    expected, observed : arrays of shape (n_drawn,)
        -log10 of the uniform's expected order statistics ``(i - 0.5) / n`` and of the sorted
        p-values, for the ranks drawn.
    band_low, band_high : arrays of shape (n_drawn,)
        -log10 of the 2.5% and 97.5% quantiles of each order statistic under the null
        (Beta(i, n - i + 1)); exact at 400 log-spaced ranks, interpolated (log-log) between.
    inflation : float
        Genomic inflation factor: the median of the 1-df chi-square quantiles of the p-values
        over the chi-square median (1 when the bulk is null and well calibrated).
    n, n_drawn : int
    """

    expected: NDArray[np.float64]
    observed: NDArray[np.float64]
    band_low: NDArray[np.float64]
    band_high: NDArray[np.float64]
    inflation: float
    n: int
    n_drawn: int

    @property
    def caption(self) -> str:
        return describe_thinning(self.n_drawn, self.n, "the smallest 2,000 p-values")


def pvalue_qq(p_values: ArrayLike, *, max_points: int = DEFAULT_MAX_POINTS,
              keep_smallest: int = 2_000) -> PValueQQ:
    """QQ plot data of p-values against the uniform distribution, on the -log10 scale.

    Parameters
    ----------
    p_values : array of shape (n_features,)
        NaN values are left out.
    max_points : int
        Ranks drawn besides the ``keep_smallest`` smallest p-values (log-spaced).
    keep_smallest : int

    Returns
    -------
    PValueQQ
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    p = p[~np.isnan(p)]
    if p.size == 0:
        raise InputError("No p-values to plot: every p-value is missing.")
    if p.min() < 0 or p.max() > 1:
        raise InputError("p-values must lie in [0, 1].")
    return _qq(np.sort(p), max_points, keep_smallest)


def _qq(sorted_p: NDArray[np.float64], max_points: int, keep_smallest: int) -> PValueQQ:
    n = sorted_p.size
    ranks = thin_ranks(n, keep_first=keep_smallest, max_points=max_points)
    order_statistic = ranks + 1.0
    expected = -np.log10((order_statistic - 0.5) / n)
    tiny = np.finfo(np.float64).tiny  # p = 0 is drawn at the top of the scale, not at infinity
    observed = -np.log10(np.maximum(sorted_p[ranks], tiny))
    # The band is smooth on the -log10 scale: exact beta quantiles at a few hundred ranks,
    # interpolated in between (the quantile function is the slow part at 10^5+ points).
    knots = np.unique(np.geomspace(1, n, num=min(n, _BAND_KNOTS)).round())
    knot_low = stats.beta.ppf(0.975, knots, n - knots + 1)
    knot_high = stats.beta.ppf(0.025, knots, n - knots + 1)
    log_knots, log_ranks = np.log(knots), np.log(order_statistic)
    low = np.exp(np.interp(log_ranks, log_knots, np.log(knot_low)))
    high = np.exp(np.interp(log_ranks, log_knots, np.log(np.maximum(knot_high, tiny))))
    median_p = float(np.median(sorted_p))
    inflation = float(stats.chi2.isf(median_p, 1) / stats.chi2.ppf(0.5, 1))
    return PValueQQ(expected=expected, observed=observed, band_low=-np.log10(low),
                    band_high=-np.log10(np.maximum(high, tiny)), inflation=inflation, n=n,
                    n_drawn=int(ranks.size))


def plot_pvalue_qq(qq: PValueQQ, *, ax: Axes | None = None,
                   title: str = "QQ plot of p-values") -> Figure:
    """Observed against expected -log10 p, with the null 95% band and the diagonal.

    Parameters
    ----------
    qq : PValueQQ
    ax : matplotlib Axes, optional
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    figure, axes = axes_for(ax, (5.2, 4.6))
    axes.fill_between(qq.expected, qq.band_low, qq.band_high, color=COLORS["band"], alpha=0.5,
                      linewidth=0, label="95% band under the null")
    top = float(max(qq.expected.max(initial=0), 1.0))
    axes.plot([0, top], [0, top], color=COLORS["line"], linewidth=1, label="y = x")
    axes.plot(qq.expected, qq.observed, linestyle="none", marker="o", markersize=2,
              color=COLORS["other"], label="p-values")
    axes.set_xlabel("expected -log10(p)")
    axes.set_ylabel("observed -log10(p)")
    axes.set_title(f"{title} (inflation {qq.inflation:.2f})", loc="left")
    axes.legend(loc="upper left", frameon=False, fontsize="small")
    return figure
