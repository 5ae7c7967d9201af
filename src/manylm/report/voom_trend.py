"""voom's mean-variance trend: sqrt(residual sd) against mean log2 count, with the lowess curve.

Law, Chen, Shi & Smyth (2014), Genome Biology 15:R29, figure 2 (``voom(..., plot=TRUE)``). A
smooth decreasing curve is expected for RNA-seq counts; a rise at the low end means too many
lowly expressed genes were kept (filter them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from manylm.errors import InputError
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

__all__ = ["VoomTrend", "plot_voom_trend", "voom_trend"]


@dataclass(frozen=True)
class VoomTrend:
    """voom's per-gene points (thinned) and its lowess trend.

    Attributes
    ----------
    mean_log_count, sqrt_sd : arrays of shape (n_drawn,)
        limma's ``voom.xy``: mean log2 count and sqrt(residual sd) per gene.
    line_x, line_y : arrays
        limma's ``voom.line``, sorted by x (at most 2,000 evenly spaced points of it).
    rows : array of int, shape (n_drawn,)
    n, n_drawn : int
    """

    mean_log_count: NDArray[np.float64]
    sqrt_sd: NDArray[np.float64]
    line_x: NDArray[np.float64]
    line_y: NDArray[np.float64]
    rows: NDArray[np.intp]
    n: int
    n_drawn: int

    @property
    def caption(self) -> str:
        return describe_thinning(self.n_drawn, self.n, "the extremes")


def voom_trend(voom_result: Any, *, max_points: int = DEFAULT_MAX_POINTS,
               seed: int = 0) -> VoomTrend:
    """The mean-variance trend that gave voom its weights.

    Parameters
    ----------
    voom_result : VoomResult
        From :func:`manylm.counts.voom` (``trend_x``, ``trend_y``, ``trend_line_x``,
        ``trend_line_y``).
    max_points : int
        Points drawn at most besides the extremes.
    seed : int

    Returns
    -------
    VoomTrend
    """
    try:
        x = np.asarray(voom_result.trend_x, dtype=np.float64)
        y = np.asarray(voom_result.trend_y, dtype=np.float64)
        line_x = np.asarray(voom_result.trend_line_x, dtype=np.float64)
        line_y = np.asarray(voom_result.trend_line_y, dtype=np.float64)
    except AttributeError as error:
        raise InputError(
            f"voom_trend needs the result of manylm.counts.voom; got {type(voom_result).__name__}"
            f" ({error})."
        ) from error
    if x.shape != y.shape or line_x.shape != line_y.shape:
        raise InputError(f"voom trend arrays disagree in length: {x.shape} points against "
                         f"{y.shape}, line {line_x.shape} against {line_y.shape}.")
    present = np.isfinite(x) & np.isfinite(y)
    extremes = extreme_rows(np.where(present, y, np.nan), count=100)
    rows = drawn_rows(present & extremes, present, max_points=max_points, seed=seed)
    # The lowess curve has a point per gene; a smooth curve needs far fewer to be drawn.
    order = thin_curve(np.argsort(line_x, kind="stable"))
    return VoomTrend(mean_log_count=x[rows], sqrt_sd=y[rows], line_x=line_x[order],
                     line_y=line_y[order], rows=rows, n=int(present.sum()),
                     n_drawn=int(rows.size))


def plot_voom_trend(data: VoomTrend, *, ax: Axes | None = None,
                    title: str = "voom: mean-variance trend") -> Figure:
    """Draw voom's points and its lowess curve.

    Parameters
    ----------
    data : VoomTrend
    ax : matplotlib Axes, optional
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    figure, axes = axes_for(ax)
    plot_points(axes, data.mean_log_count, data.sqrt_sd, label="genes")
    axes.plot(data.line_x, data.line_y, color=COLORS["up"], linewidth=1.8,
              label="lowess trend")
    finish_axes(axes, xlabel="log2(count size + 0.5)", ylabel="sqrt(standard deviation)",
                title=title)
    return figure
