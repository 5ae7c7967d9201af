"""Heat map of how each residual principal component is tied to each sample variable.

The residuals of a good model are noise. Principal components of the residuals (features x
samples, Leek & Storey 2007 use the same decomposition for surrogate variables) that follow a
known covariate, such as batch, show structure the model left out; the heat map shows the R^2
of each component against each covariate and surrogate variable. The numbers come from a
``ResidualStructure`` (``manylm.confounders.residual_structure.residual_components``); any
object with the same three attributes works.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from manylm.errors import InputError
from manylm.report.canvas import axes_for, literal_tick_labels

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["ResidualAssociation", "plot_residual_association", "residual_association"]


@dataclass(frozen=True)
class ResidualAssociation:
    """Association of residual components (rows) with sample variables (columns).

    Attributes
    ----------
    r_squared : DataFrame (n_components x n_variables)
        Share of each component's sample scores explained by the variable (a one-way model for
        a factor, a straight line for a number).
    p_values : DataFrame (n_components x n_variables)
        F-test p-value of that fit.
    variance_explained : Series (n_components,)
        Share of the residual variance carried by each component.
    """

    r_squared: pd.DataFrame
    p_values: pd.DataFrame
    variance_explained: pd.Series


def residual_association(structure: Any, *, max_components: int = 10) -> ResidualAssociation:
    """Check and trim a residual structure for the heat map.

    Parameters
    ----------
    structure : ResidualStructure or alike
        With ``r_squared`` and ``p_values`` (DataFrames, components x variables) and
        ``variance_explained`` (Series indexed by component).
    max_components : int
        Keep the first components only.

    Returns
    -------
    ResidualAssociation
    """
    try:
        r_squared = pd.DataFrame(structure.r_squared)
        p_values = pd.DataFrame(structure.p_values)
        variance = pd.Series(structure.variance_explained, dtype=np.float64)
    except AttributeError as error:
        raise InputError(
            "residual_association needs an object with r_squared, p_values and "
            f"variance_explained (from residual_components); got {type(structure).__name__}."
        ) from error
    if r_squared.shape != p_values.shape or not r_squared.index.equals(p_values.index) \
            or not r_squared.columns.equals(p_values.columns):
        raise InputError(
            f"r_squared ({r_squared.shape}) and p_values ({p_values.shape}) must have the same "
            "components and variables."
        )
    missing = [str(c) for c in r_squared.index if c not in variance.index]
    if missing:
        raise InputError(f"variance_explained has no value for component(s) "
                         f"{', '.join(missing[:5])}.")
    if max_components < 1:
        raise InputError(f"The 'max_components' parameter must be >= 1. Got {max_components}.")
    components = list(r_squared.index[:max_components])
    return ResidualAssociation(
        r_squared=r_squared.loc[components].astype(np.float64),
        p_values=p_values.loc[components].astype(np.float64),
        variance_explained=variance.loc[components],
    )


def plot_residual_association(data: ResidualAssociation, *, ax: Axes | None = None,
                              title: str = "Residual PCs against sample variables"
                              ) -> Figure:
    """Heat map of R^2 (0 white to 1 dark), each cell annotated; p < 0.001 marked ``*``.

    Parameters
    ----------
    data : ResidualAssociation
    ax : matplotlib Axes, optional
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    n_components, n_variables = data.r_squared.shape
    size = (max(5.6, 2.4 + 0.8 * n_variables), max(3.0, 1.2 + 0.4 * n_components))
    figure, axes = axes_for(ax, size)
    values = data.r_squared.to_numpy(dtype=np.float64)
    image = axes.imshow(values, cmap="Reds", vmin=0.0, vmax=1.0, aspect="auto")
    strong = data.p_values.to_numpy(dtype=np.float64) < 1e-3
    for i in range(n_components):
        for j in range(n_variables):
            if np.isnan(values[i, j]):
                continue
            star = "*" if strong[i, j] else ""
            axes.text(j, i, f"{values[i, j]:.2f}{star}", ha="center", va="center", fontsize=7,
                      color="white" if values[i, j] > 0.6 else "black")
    axes.set_xticks(range(n_variables), [str(c) for c in data.r_squared.columns],
                    rotation=30, ha="right")
    axes.set_yticks(range(n_components),
                    [f"{component} ({100 * data.variance_explained[component]:.1f}%)"
                     for component in data.r_squared.index])
    literal_tick_labels(axes)
    figure.colorbar(image, ax=axes, label="R^2", shrink=0.9)
    axes.set_title(title, loc="left", fontsize="medium")
    return figure
