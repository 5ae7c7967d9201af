"""Volcano plot: estimate against -log10 p-value (limma's ``volcanoplot``, style "p-value")."""

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

__all__ = ["Volcano", "plot_volcano", "volcano"]


@dataclass(frozen=True)
class Volcano:
    """The points of a volcano plot (thinned) and the labels of the strongest features.

    Attributes
    ----------
    coefficient : str
    estimate, minus_log10_p : arrays of shape (n_drawn,)
    significant : array of bool, shape (n_drawn,)
        Adjusted p-value <= ``significance``.
    rows : array of int, shape (n_drawn,)
        Positions of the drawn points among all features.
    labels : list of (str, float, float)
        Feature name, x and y of the ``label_top`` smallest p-values.
    n, n_drawn, n_significant : int
        Features with a p-value, points drawn, significant features.
    significance : float
    """

    coefficient: str
    estimate: NDArray[np.float64]
    minus_log10_p: NDArray[np.float64]
    significant: NDArray[np.bool_]
    rows: NDArray[np.intp]
    labels: list[tuple[str, float, float]]
    n: int
    n_drawn: int
    n_significant: int
    significance: float

    @property
    def caption(self) -> str:
        return describe_thinning(self.n_drawn, self.n, "every significant feature")


def volcano(result: Any, coef: str | int | None = None, *, adjust: str = "BH",
            significance: float = 0.05, max_points: int = DEFAULT_MAX_POINTS,
            label_top: int = 10, seed: int = 0) -> Volcano:
    """Estimate against -log10 p of one coefficient, significant features marked.

    Parameters
    ----------
    result : ModeratedFit or CoefficientStatistics
    coef : str or int
        The coefficient (required with a ModeratedFit).
    adjust : str
        p-value adjustment deciding significance (:func:`manylm.p_adjust`).
    significance : float
        Adjusted p-value threshold.
    max_points : int
        Non-significant points drawn at most (a fixed random sample, plus the extremes).
    label_top : int
        Label this many features with the smallest p-values.
    seed : int

    Returns
    -------
    Volcano
    """
    statistics = as_coefficient_statistics(result, coef, adjust)
    check_significance(significance)
    return _volcano(statistics, significance, max_points, label_top, seed)


def _volcano(statistics: CoefficientStatistics, significance: float, max_points: int,
             label_top: int, seed: int) -> Volcano:
    with np.errstate(divide="ignore"):
        y_all = -np.log10(statistics.p_value)
    present = np.isfinite(statistics.estimate) & ~np.isnan(statistics.p_value)
    significant_all = present & (statistics.adj_p_value <= significance)
    keep = significant_all | (present & extreme_rows(np.where(present, statistics.estimate,
                                                                     np.nan)))
    rows = drawn_rows(keep, present, max_points=max_points, seed=seed)
    labels: list[tuple[str, float, float]] = []
    if label_top > 0:
        candidates = np.flatnonzero(present)
        best = candidates[np.argsort(statistics.p_value[candidates], kind="stable")[:label_top]]
        labels = [(str(statistics.feature_ids[i]), float(statistics.estimate[i]),
                   float(y_all[i])) for i in best]
    return Volcano(
        coefficient=statistics.name, estimate=statistics.estimate[rows],
        minus_log10_p=y_all[rows], significant=significant_all[rows], rows=rows,
        labels=labels, n=int(present.sum()), n_drawn=int(rows.size),
        n_significant=int(significant_all.sum()), significance=significance,
    )


def plot_volcano(data: Volcano, *, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Draw a volcano plot; significant features in colour, the top ones labelled.

    Parameters
    ----------
    data : Volcano
    ax : matplotlib Axes, optional
    title : str, optional
        Default: ``"Volcano: <coefficient>"``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    figure, axes = axes_for(ax)
    y = np.minimum(data.minus_log10_p, 350.0)  # p = 0 would be infinitely high
    other = ~data.significant
    plot_points(axes, data.estimate[other], y[other], label="not significant")
    up = data.significant & (data.estimate > 0)
    down = data.significant & (data.estimate <= 0)
    for mask, colour, name in ((up, COLORS["up"], "up"), (down, COLORS["down"], "down")):
        plot_points(axes, data.estimate[mask], y[mask], color=colour, size=2, alpha=None,
                    label=f"{name}, adj. p <= {data.significance:g} ({int(mask.sum()):,})")
    for name, x, height in data.labels:
        axes.annotate(name, (x, min(height, 350.0)), fontsize=6, xytext=(2, 2),
                      textcoords="offset points", parse_math=False)
    axes.axvline(0, color=COLORS["band"], linewidth=0.8)
    finish_axes(axes, xlabel=f"estimate ({data.coefficient})", ylabel="-log10(p-value)",
                title=title or f"Volcano: {data.coefficient}", legend="upper left", literal=True)
    return figure
