"""Distribution of the estimates of the tested coefficients across features.

Most features are unaffected in a typical experiment, so each tested coefficient's estimates
should pile up around zero; a shifted or skewed distribution hints at a normalisation or
composition problem, very wide tails at outlier samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.errors import InputError
from manylm.report.canvas import axes_for, finish_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["EstimateDistribution", "estimate_distribution", "plot_estimate_distribution"]


@dataclass(frozen=True)
class EstimateDistribution:
    """Histograms of estimates on shared bins, and a summary per coefficient.

    Attributes
    ----------
    edges : array of shape (n_bins + 1,)
        Shared bins between the 0.5% and 99.5% quantiles of all estimates pooled; values
        outside are counted in the end bins (see ``summary.n_clipped``).
    counts : DataFrame (n_bins x n_coefficients)
    summary : DataFrame (n_coefficients x statistics)
        ``n``, ``mean``, ``sd``, ``median``, ``q25``, ``q75``, ``min``, ``max``, ``n_clipped``.
    """

    edges: NDArray[np.float64]
    counts: pd.DataFrame
    summary: pd.DataFrame


def estimate_distribution(result: Any, coefficients: Sequence[str] | None = None, *,
                          n_bins: int = 60) -> EstimateDistribution:
    """Histogram and summary of each coefficient's estimates over all features.

    Parameters
    ----------
    result : ModeratedFit or LinearModelFit
    coefficients : list of str, optional
        Coefficient names (default: all but an intercept).
    n_bins : int

    Returns
    -------
    EstimateDistribution
    """
    fit = getattr(result, "fit", result)
    names = list(fit.coefficient_names)
    if coefficients is None:
        chosen = [n for n in names if n not in ("Intercept", "(Intercept)")] or names
    else:
        chosen = list(coefficients)
        unknown = [c for c in chosen if c not in names]
        if unknown:
            raise InputError(f"{', '.join(unknown)}: not coefficient(s) of the fit. "
                             f"Coefficients: {', '.join(names)}.")
    if n_bins < 2:
        raise InputError(f"The 'n_bins' parameter must be >= 2. Got {n_bins}.")
    values = np.asarray(fit.coefficients, dtype=np.float64)[:, [names.index(c) for c in chosen]]
    return _distribution(values, chosen, n_bins)


def _distribution(values: NDArray[np.float64], names: list[str],
                  n_bins: int) -> EstimateDistribution:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        low, high = -1.0, 1.0
    else:
        low, high = (float(v) for v in np.quantile(finite, [0.005, 0.995]))
        if high <= low:
            low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, n_bins + 1)
    counts = {}
    rows = []
    for j, name in enumerate(names):  # one pass per coefficient, vectorised over features
        column = values[:, j]
        column = column[np.isfinite(column)]
        clipped = np.clip(column, low, high)
        counts[name] = np.histogram(clipped, bins=edges)[0]
        quantiles = np.quantile(column, [0.25, 0.5, 0.75]) if column.size else [np.nan] * 3
        rows.append({
            "n": int(column.size), "mean": float(column.mean()) if column.size else np.nan,
            "sd": float(column.std(ddof=1)) if column.size > 1 else np.nan,
            "median": float(quantiles[1]), "q25": float(quantiles[0]), "q75": float(quantiles[2]),
            "min": float(column.min()) if column.size else np.nan,
            "max": float(column.max()) if column.size else np.nan,
            "n_clipped": int(((column < low) | (column > high)).sum()),
        })
    return EstimateDistribution(edges=edges, counts=pd.DataFrame(counts),
                                summary=pd.DataFrame(rows, index=pd.Index(names)))


def plot_estimate_distribution(data: EstimateDistribution, *, ax: Axes | None = None,
                               title: str = "Distribution of estimates") -> Figure:
    """Step histograms of each coefficient's estimates on shared bins, with the zero line.

    Parameters
    ----------
    data : EstimateDistribution
    ax : matplotlib Axes, optional
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    figure, axes = axes_for(ax)
    medians = data.summary["median"].to_numpy(dtype=np.float64)
    for name, median in zip(data.counts.columns, medians, strict=True):
        axes.stairs(data.counts[name].to_numpy(), data.edges, linewidth=1.4,
                    label=f"{name} (median {median:.3g})")
    axes.axvline(0, color="black", linewidth=0.8, linestyle=":")
    finish_axes(axes, xlabel="estimate", ylabel="features", title=title, legend=None)
    legend = axes.legend(loc="upper right", frameon=False, fontsize="small")
    for text in legend.get_texts():
        text.set_parse_math(False)
    return figure
