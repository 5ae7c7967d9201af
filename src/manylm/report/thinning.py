"""Choosing which points of a scatter plot to draw when there are hundreds of thousands.

A PNG of 450,000 points looks the same as one of a few tens of thousands, except where the
points are rare: the significant features, the extremes. So those are always kept and the dense
remainder is represented by a fixed random sample (a fixed seed: the same input gives the same
picture). Every plot says in its caption how many points it draws.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from manylm.errors import InputError

__all__ = ["CURVE_POINTS", "DEFAULT_MAX_POINTS", "describe_thinning", "drawn_rows",
           "extreme_rows", "thin_curve", "thin_points", "thin_ranks"]

#: Points drawn besides the ones that are always kept.
DEFAULT_MAX_POINTS = 20_000

#: Points a smooth curve (a prior or lowess trend) is drawn with: more look the same.
CURVE_POINTS = 2_000


def thin_points(keep: ArrayLike, *, max_points: int = DEFAULT_MAX_POINTS,
                seed: int = 0) -> NDArray[np.intp]:
    """Rows to draw: every row marked in ``keep``, and at most ``max_points`` of the others.

    Parameters
    ----------
    keep : array of bool, shape (n_points,)
        Rows that are always drawn (significant features, outliers, extremes).
    max_points : int
        How many of the other rows to draw at most; they are a uniform random sample drawn with
        a fixed ``seed``, so the selection is reproducible.
    seed : int

    Returns
    -------
    array of int, shape (n_drawn,)
        Row positions in increasing order.
    """
    mask = np.asarray(keep, dtype=bool)
    if mask.ndim != 1:
        raise InputError(f"'keep' must be one-dimensional; got shape {mask.shape}.")
    if max_points < 0:
        raise InputError(f"The 'max_points' parameter must be >= 0. Got {max_points}.")
    return _thin(mask, max_points, seed)


def drawn_rows(keep: NDArray[np.bool_], present: NDArray[np.bool_], *, max_points: int,
               seed: int) -> NDArray[np.intp]:
    """:func:`thin_points` of ``keep``, less the rows not ``present`` (a value is missing).

    The random sample is drawn among all rows and then cut, so it may hold fewer than
    ``max_points`` rows; this keeps the points drawn for a given seed as they were.
    """
    rows = thin_points(keep, max_points=max_points, seed=seed)
    return rows[present[rows]]


def _thin(keep: NDArray[np.bool_], max_points: int, seed: int) -> NDArray[np.intp]:
    others = np.flatnonzero(~keep)
    if others.size > max_points:
        generator = np.random.default_rng(seed)
        others = generator.choice(others, size=max_points, replace=False)
    drawn = np.concatenate([np.flatnonzero(keep), others])
    drawn.sort()
    return drawn


def extreme_rows(values: ArrayLike, *, count: int = 200) -> NDArray[np.bool_]:
    """Mark the ``count`` smallest and ``count`` largest finite values (they set a plot's range).

    Parameters
    ----------
    values : array of shape (n_points,)
    count : int

    Returns
    -------
    array of bool, shape (n_points,)
    """
    array = np.asarray(values, dtype=np.float64)
    marked = np.zeros(array.shape, dtype=bool)
    finite = np.flatnonzero(np.isfinite(array))
    if finite.size <= 2 * count:
        marked[finite] = True
        return marked
    finite_values = array[finite]
    low = np.argpartition(finite_values, count)[:count]
    high = np.argpartition(finite_values, finite.size - count)[finite.size - count:]
    marked[finite[low]] = True
    marked[finite[high]] = True
    return marked


def thin_ranks(n_points: int, *, keep_first: int = 2_000,
               max_points: int = DEFAULT_MAX_POINTS) -> NDArray[np.intp]:
    """Ranks to draw from a sorted sequence (a QQ plot): the first ones, then log-spaced ranks.

    On a -log10 scale, log-spaced ranks are evenly spaced, so the thinned curve looks like the
    whole one.

    Parameters
    ----------
    n_points : int
    keep_first : int
        The most extreme ranks, always drawn.
    max_points : int
        Further ranks drawn at most.

    Returns
    -------
    array of int
        Increasing 0-based ranks, including the last one.
    """
    if n_points <= keep_first + max_points:
        return np.arange(n_points, dtype=np.intp)
    head = np.arange(keep_first, dtype=np.intp)
    tail = np.geomspace(keep_first + 1, n_points, num=max_points).astype(np.intp) - 1
    return np.unique(np.concatenate([head, tail, [n_points - 1]]))


def thin_curve(order: NDArray[np.intp], *,
               max_points: int = CURVE_POINTS) -> NDArray[np.intp]:
    """At most ``max_points`` evenly spaced entries of ``order``, the first and last included.

    Parameters
    ----------
    order : array of int
        Positions of a curve's points, sorted by x.
    max_points : int

    Returns
    -------
    array of int
    """
    if order.size > max_points:
        order = order[np.linspace(0, order.size - 1, max_points).astype(np.intp)]
    return order


def describe_thinning(n_drawn: int, n_total: int, kept: str = "") -> str:
    """A caption fragment such as "20,512 of 450,000 points drawn (all 512 significant ...)".

    Parameters
    ----------
    n_drawn, n_total : int
    kept : str
        What was always kept, e.g. ``"every significant feature"``.
    """
    if n_drawn >= n_total:
        return f"All {n_total:,} points drawn."
    suffix = f": {kept} and a fixed random sample of the rest" if kept else ""
    return f"{n_drawn:,} of {n_total:,} points drawn{suffix}."
