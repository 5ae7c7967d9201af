"""Where a plot is drawn: the caller's axes, or a new figure (matplotlib imported on demand).

The plot functions use :class:`matplotlib.figure.Figure` directly, never ``pyplot``: no global
figure registry, no GUI backend, so they are safe in scripts, servers and threads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from manylm.errors import InputError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["COLORS", "axes_for", "literal_tick_labels", "require_matplotlib"]

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
