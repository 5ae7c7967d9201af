"""Mean-difference (MD) plot: estimate against mean expression (limma's ``plotMD``).

For a two-group comparison the estimate is the log-fold-change and the mean is limma's
``Amean``; an MD plot shows whether effects depend on expression level (a trend in the cloud
usually means a normalisation problem) and where the significant features lie.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from manylm.report.canvas import COLORS, axes_for, finish_axes, plot_points
from manylm.report.coefficient_stats import (
    CoefficientStatistics,
    as_coefficient_statistics,
    check_significance,
)
from manylm.report.thinning import DEFAULT_MAX_POINTS, describe_thinning, drawn_rows, extreme_rows

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["MeanDifference", "mean_difference", "plot_mean_difference"]


@dataclass(frozen=True)
class MeanDifference:
    """The points of an MD plot (thinned), with each point's status.

    Attributes
    ----------
    coefficient : str
    mean, estimate : arrays of shape (n_drawn,)
    status : array of int8, shape (n_drawn,)
        1 significant and positive, -1 significant and negative, 0 otherwise (as limma's
        ``decideTests``).
    rows : array of int, shape (n_drawn,)
    n, n_drawn, n_up, n_down : int
    significance : float
    """

    coefficient: str
    mean: NDArray[np.float64]
    estimate: NDArray[np.float64]
    status: NDArray[np.int8]
    rows: NDArray[np.intp]
    n: int
    n_drawn: int
    n_up: int
    n_down: int
    significance: float

    @property
    def caption(self) -> str:
        return describe_thinning(self.n_drawn, self.n, "every significant feature")


def mean_difference(result: Any, coef: str | int | None = None, *, adjust: str = "BH",
                    significance: float = 0.05, max_points: int = DEFAULT_MAX_POINTS,
                    seed: int = 0) -> MeanDifference:
    """Estimate against mean expression for one coefficient, with up/down status.

    Parameters
    ----------
    result : ModeratedFit or CoefficientStatistics
    coef : str or int
        The coefficient (required with a ModeratedFit).
    adjust : str
        p-value adjustment deciding significance.
    significance : float
        Adjusted p-value threshold.
    max_points : int
        Non-significant points drawn at most.
    seed : int

    Returns
    -------
    MeanDifference
    """
    statistics = as_coefficient_statistics(result, coef, adjust)
    check_significance(significance)
    return _mean_difference(statistics, significance, max_points, seed)


def _mean_difference(statistics: CoefficientStatistics, significance: float, max_points: int,
                     seed: int) -> MeanDifference:
    present = np.isfinite(statistics.estimate) & np.isfinite(statistics.mean)
    significant = present & (statistics.adj_p_value <= significance)
    status = np.zeros(statistics.estimate.shape, dtype=np.int8)
    status[significant & (statistics.estimate > 0)] = 1
    status[significant & (statistics.estimate < 0)] = -1
    extremes = extreme_rows(np.where(present, statistics.estimate, np.nan))
    extremes |= extreme_rows(np.where(present, statistics.mean, np.nan), count=50)
    rows = drawn_rows(significant | (present & extremes), present, max_points=max_points,
                      seed=seed)
    return MeanDifference(
        coefficient=statistics.name, mean=statistics.mean[rows],
        estimate=statistics.estimate[rows], status=status[rows], rows=rows,
        n=int(present.sum()), n_drawn=int(rows.size), n_up=int((status == 1).sum()),
        n_down=int((status == -1).sum()), significance=significance,
    )


def plot_mean_difference(data: MeanDifference, *, ax: Axes | None = None,
                         title: str | None = None) -> Figure:
    """Draw the MD plot: grey cloud, significant up in red and down in blue, zero line.

    Parameters
    ----------
    data : MeanDifference
    ax : matplotlib Axes, optional
    title : str, optional
        Default: ``"MD: <coefficient>"``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    figure, axes = axes_for(ax)
    groups = ((0, COLORS["other"], "not significant", 1.5, 0.5),
              (1, COLORS["up"], f"up ({data.n_up:,})", 2.0, 1.0),
              (-1, COLORS["down"], f"down ({data.n_down:,})", 2.0, 1.0))
    for value, colour, name, size, alpha in groups:
        mask = data.status == value
        plot_points(axes, data.mean[mask], data.estimate[mask], label=name, color=colour,
                    size=size, alpha=alpha)
    axes.axhline(0, color=COLORS["line"], linewidth=0.8)
    finish_axes(axes, xlabel="mean expression", ylabel=f"estimate ({data.coefficient})",
                title=title or f"MD: {data.coefficient}", literal=True)
    return figure
