"""Where a plot is drawn: the caller's axes, or a new figure (matplotlib imported on demand).

The plot functions use :class:`matplotlib.figure.Figure` directly, never ``pyplot``: no global
figure registry, no GUI backend, so they are safe in scripts, servers and threads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from manylm.errors import InputError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from numpy.typing import ArrayLike

__all__ = ["COLORS", "axes_for", "finish_axes", "literal_tick_labels", "plot_points",
           "require_matplotlib"]

#: limma's plot colours: not significant, up, down; and the accent for lines.
COLORS = {"other": "#4d4d4d", "up": "#d7301f", "down": "#2166ac", "line": "#1f78b4",
          "band": "#bdbdbd", "highlight": "#e6550d"}


def require_matplotlib() -> Any:
    """Import matplotlib, or say how to install it."""
    try:
        import matplotlib
    except ImportError as error:
        raise InputError(
            "Plots need matplotlib, which is not installed: pip install 'manylm[report]' "
            "(or pip install matplotlib)."
        ) from error
    return matplotlib


def axes_for(ax: Axes | None, size: tuple[float, float] = (6.4, 4.4)) -> tuple[Figure, Axes]:
    """The figure and axes to draw on: ``ax`` and its figure, or a new figure of ``size``."""
    require_matplotlib()
    if ax is not None:
        figure = ax.get_figure()
        if figure is None:  # pragma: no cover - axes always belong to a figure
            raise InputError("The axes given with ax= belong to no figure.")
        return figure, ax  # type: ignore[return-value]
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, layout="constrained")
    return figure, figure.add_subplot()


def literal_tick_labels(ax: Axes) -> None:
    """Show tick labels as typed: a sample called ``$x$`` must not become mathematics."""
    for label in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
        label.set_parse_math(False)


def plot_points(axes: Axes, x: ArrayLike, y: ArrayLike, *, label: str,
                color: str = COLORS["other"], size: float = 1.5,
                alpha: float | None = 0.5) -> None:
    """Draw one group of a scatter plot as round, rasterised markers.

    Rasterised, a PDF or SVG of 20,000 points stays small. The defaults draw the grey cloud of
    unremarkable features; ``alpha=None`` is opaque.
    """
    axes.plot(x, y, linestyle="none", marker="o", markersize=size, alpha=alpha, color=color,
              rasterized=True, label=label)


def finish_axes(axes: Axes, *, xlabel: str, ylabel: str, title: str,
                legend: Literal["upper right", "upper left"] | None = "upper right",
                literal: bool = False) -> None:
    """Axis labels, a left-aligned title and a frameless legend at ``legend`` (None: none).

    ``literal=True`` shows the labels and the title as typed: they hold names from the data, and
    a coefficient called ``$x$`` must not become mathematics.
    """
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title, loc="left")
    if literal:
        for text in (axes.xaxis.label, axes.yaxis.label, axes.title):
            text.set_parse_math(False)
    if legend is not None:
        axes.legend(loc=legend, frameon=False, fontsize="small", markerscale=3)
