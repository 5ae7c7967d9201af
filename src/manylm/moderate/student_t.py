"""Fast Student t tail probabilities and quantiles for many features at once."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import special

from manylm.parallel import cpu_count, parallel_map

__all__ = ["student_t_quantile", "student_t_sf"]

_PARALLEL_MIN = 10_000


def student_t_sf(t: NDArray[np.floating], df: NDArray[np.floating] | float) -> NDArray[np.floating]:
    """Upper tail P(T > t) on ``df`` degrees of freedom (infinite df: the normal).

    ``scipy.special.stdtr`` directly (no distribution-object overhead), split over the cores for
    long vectors; the ufunc releases the GIL.
    """
    t = np.asarray(t, dtype=np.float64)
    df = np.broadcast_to(np.asarray(df, dtype=np.float64), t.shape)
    workers = cpu_count()
    if t.size < _PARALLEL_MIN or workers == 1:
        return _sf(t, df)
    bounds = np.linspace(0, t.size, workers + 1).astype(int)
    flat_t, flat_df = t.ravel(), df.ravel()
    out = np.empty(t.size)

    def run(i: int) -> None:
        part = slice(bounds[i], bounds[i + 1])
        out[part] = _sf(flat_t[part], flat_df[part])

    parallel_map(run, range(workers))
    return out.reshape(t.shape)


def _sf(t: NDArray[np.floating], df: NDArray[np.floating]) -> NDArray[np.floating]:
    infinite = np.isinf(df)
    if infinite.any():
        return np.where(infinite, special.ndtr(-t), special.stdtr(np.where(infinite, 1.0, df), -t))
    return np.asarray(special.stdtr(df, -t))


def student_t_quantile(p: float, df: NDArray[np.floating]) -> NDArray[np.floating]:
    """The ``p`` quantile for each df, computed once per distinct df value."""
    df = np.asarray(df, dtype=np.float64)
    if df.size > 1 and np.all(df == df.flat[0]):  # the usual case: one df for every feature
        return np.full(df.shape, student_t_quantile(p, df.flat[:1])[0])
    unique, inverse = np.unique(df, return_inverse=True)
    finite = np.isfinite(unique)
    values = np.full(unique.shape, np.nan)
    values[finite] = special.stdtrit(unique[finite], p)
    values[np.isposinf(unique)] = special.ndtri(p)
    return values[inverse.reshape(df.shape)]
