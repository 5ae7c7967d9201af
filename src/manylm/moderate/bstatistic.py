"""B-statistics (Smyth 2004, section 5) and the F-test p-value, as limma's eBayes computes them."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray
from scipy import special

from manylm.moderate.distinct_values import broadcast_value
from manylm.parallel import parallel_slices

__all__ = ["f_pvalue", "lods", "tmixture", "variance_from_top"]


def f_pvalue(f: NDArray[np.floating], df1: int, df2: Any) -> NDArray[np.floating]:
    """Upper tail of F(df1, df2) at ``f`` (chi-square / df1 where df2 is infinite)."""
    from scipy import stats  # the F test only: scipy.stats takes ~0.3 s to import

    df2 = np.broadcast_to(np.asarray(df2, dtype=np.float64), f.shape)
    with np.errstate(invalid="ignore"):
        return np.where(
            np.isinf(df2), stats.chi2.sf(f * df1, df1), stats.f.sf(f, df1, np.where(
                np.isinf(df2), 1.0, df2))
        )


def tmixture(t: NDArray[np.floating], stdev_unscaled: NDArray[np.floating],
              df: NDArray[np.floating], proportion: float,
              limits: NDArray[np.floating] | None) -> float:
    """Prior variance of non-zero coefficients (limma's ``tmixture.vector``)."""
    keep = ~np.isnan(t)
    if not keep.all():
        t, stdev_unscaled, df = t[keep], stdev_unscaled[keep], df[keep]
    n = t.shape[0]
    n_target = int(np.ceil(proportion / 2 * n))
    if n_target < 1:
        return float("nan")
    p = max(n_target / n, proportion)
    t = np.abs(t)
    one_df = broadcast_value(df)
    df_max = one_df if one_df is not None else float(np.max(df))
    if one_df is None and np.any(df < df_max):
        order = _largest_after_conversion(t, df, df_max, n_target)
        t_top = _convert_t(t[order], df[order], df_max)
    else:
        order = _largest_first(t, n_target)
        t_top = t[order]
    return variance_from_top(t_top, stdev_unscaled[order] ** 2, n, p, df_max, limits)


def variance_from_top(t_top: NDArray[np.floating], v1: NDArray[np.floating], n: int, p: float,
                      df_max: float, limits: NDArray[np.floating] | None) -> float:
    """The core of limma's ``tmixture.vector``, from the largest |t| of ``n`` features.

    ``t_top`` (on ``df_max`` df, largest first) and ``v1`` (their unscaled variances): each
    gets the prior variance that puts it at its expected order statistic when a proportion
    ``p`` of the features is non-null; the estimate is their mean, clipped to ``limits``.
    """
    r = np.arange(1, t_top.shape[0] + 1)
    p0 = 2 * _t_upper(t_top, df_max)
    p_target = ((r - 0.5) / n - (1 - p) * p0) / p
    v0 = np.zeros(t_top.shape[0])
    positive = p_target > p0
    if positive.any():
        q_target = _t_upper_quantile(p_target[positive] / 2, df_max)
        v0[positive] = v1[positive] * ((t_top[positive] / q_target) ** 2 - 1)
    if limits is not None:
        v0 = np.clip(v0, limits[0], limits[1])
    return float(np.mean(v0))


def _convert_t(t: NDArray[np.floating], df: NDArray[np.floating],
               df_max: float) -> NDArray[np.floating]:
    """The t with the same tail probability on ``df_max`` degrees of freedom."""
    smaller = df < df_max
    if not smaller.any():
        return t
    converted = t.copy()
    with np.errstate(divide="ignore"):  # a tail of 0: -inf, as scipy.stats.t.logsf gives
        tail = np.log(_t_upper(t[smaller], df[smaller]))
    converted[smaller] = _t_upper_quantile(np.exp(tail), df_max)
    return converted


# Student's t tails from scipy.special, as scipy.stats.t computes them (sf: stdtr(df, -t);
# isf: -stdtrit(df, p); logsf: the log of sf) without importing scipy.stats.
def _t_upper(t: Any, df: Any) -> NDArray[np.float64]:
    """P(T > t) on ``df`` degrees of freedom (``scipy.stats.t.sf``)."""
    return np.asarray(special.stdtr(df, -np.asarray(t, dtype=np.float64)), dtype=np.float64)


def _t_upper_quantile(p: Any, df: Any) -> NDArray[np.float64]:
    """The t with P(T > t) = p on ``df`` degrees of freedom (``scipy.stats.t.isf``)."""
    return np.asarray(-special.stdtrit(df, np.asarray(p, dtype=np.float64)), dtype=np.float64)


def _largest_after_conversion(t: NDArray[np.floating], df: NDArray[np.floating], df_max: float,
                              k: int) -> NDArray[np.intp]:
    """Positions of the k largest converted t, largest first, without converting every t.

    Converting to more df never increases |t|, so once the k-th largest converted value among
    the features with the largest raw t is at least the largest raw t left out, no feature left
    out can enter the top k. Ties keep input order, as R's stable ``order``.
    """
    n = t.shape[0]
    size = min(n, 4 * k)
    while True:
        candidates = np.sort(_largest_first(t, size))
        converted = _convert_t(t[candidates], df[candidates], df_max)
        top = candidates[np.argsort(-converted, kind="stable")[:k]]
        if size == n:
            return top
        left_out_max = float(np.max(np.delete(t, candidates)))
        kth = float(np.sort(converted)[-k])
        if kth > left_out_max:
            return top
        size = min(n, size * 4)


#: From this many values on, the k largest are found through a sampled threshold.
_SAMPLED_MIN = 65_536
_SAMPLE_STEP = 64


def _largest_first(values: NDArray[np.floating], k: int) -> NDArray[np.intp]:
    """Positions of the k largest values, largest first, ties in input order (R's stable order).

    A partial selection, then a stable sort of the few selected: the same set and order as a full
    stable sort, without sorting every feature.
    """
    n = values.shape[0]
    if k >= n:
        return np.argsort(-values, kind="stable")
    if n >= _SAMPLED_MIN and k * _SAMPLE_STEP <= n:
        # A threshold from every 64th value, low enough that about 2k + 1000 values pass it:
        # one comparison pass instead of a partition of every value (checked, else exact).
        sample = np.sort(values[::_SAMPLE_STEP])
        rank = min(sample.shape[0], 2 * k // _SAMPLE_STEP + 16)
        candidates = np.flatnonzero(values >= sample[sample.shape[0] - rank])
        if candidates.shape[0] >= k:
            return candidates[np.argsort(-values[candidates], kind="stable")[:k]]
    threshold = np.partition(values, values.shape[0] - k)[values.shape[0] - k]
    above = np.flatnonzero(values > threshold)
    ties = np.flatnonzero(values == threshold)[: k - above.shape[0]]
    chosen = np.sort(np.concatenate([above, ties]))
    return chosen[np.argsort(-values[chosen], kind="stable")]


def lods(t: NDArray[np.floating], stdev_unscaled: NDArray[np.floating],
          var_prior: float, df_total: NDArray[np.floating],
          df_prior: float | NDArray[np.floating], proportion: float) -> NDArray[np.floating]:
    """B-statistic of one coefficient: log posterior odds that it is non-zero.

    limma's ``eBayes``: with r = (v + var_prior) / v (v the unscaled variance),
    B = log(p / (1 - p)) - log(r) / 2 + (1 + d) / 2 log((t^2 + d) / (t^2 / r + d)) on d
    total df, and t^2 (1 - 1 / r) / 2 for the last term when the prior df is infinite.
    One compiled pass over the features, on every core.
    """
    statistics: NDArray[np.float64] = np.asarray(t, dtype=np.float64)
    shape = statistics.shape
    prior_odds = float(np.log(proportion / (1 - proportion)))
    stdev, df = np.asarray(stdev_unscaled), np.asarray(df_total)
    one_v = stdev.ndim == 0 or broadcast_value(stdev) is not None
    one_d = df.ndim == 0 or broadcast_value(df) is not None
    if one_v and one_d and np.ndim(df_prior) == 0 and statistics.ndim == 1:
        # a dense fit: r and log(r) once, one logarithm per feature
        v_one = float(stdev.flat[0]) ** 2
        r = (v_one + float(var_prior)) / v_one
        constant = prior_odds - float(np.log(r)) / 2
        out = np.empty(shape)

        def run_one(part: slice) -> None:
            _lods_one_df(statistics[part], r, float(df.flat[0]), float(df_prior) > 1e6,
                         constant, out[part])

        parallel_slices(run_one, shape[0])
        return out
    v = np.broadcast_to(np.asarray(stdev_unscaled, dtype=np.float64) ** 2, shape)
    d = np.broadcast_to(np.asarray(df_total, dtype=np.float64), shape)
    infinite = np.broadcast_to(np.asarray(df_prior, dtype=np.float64) > 1e6, shape)
    out = np.empty(shape)

    def run(part: slice) -> None:
        _lods_kernel(statistics[part], v[part], d[part], infinite[part], float(var_prior),
                     prior_odds, out[part])

    parallel_slices(run, shape[0])
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _lods_kernel(t: NDArray[np.float64], v: NDArray[np.float64], d: NDArray[np.float64],
                 infinite: NDArray[np.bool_], var_prior: float, prior_odds: float,
                 out: NDArray[np.float64]) -> None:
    for i in range(t.shape[0]):
        r = (v[i] + var_prior) / v[i]
        t2 = t[i] * t[i]
        if infinite[i]:
            kernel = t2 * (1 - 1 / r) / 2
        else:
            kernel = (1 + d[i]) / 2 * np.log((t2 + d[i]) / (t2 / r + d[i]))
        out[i] = prior_odds - np.log(r) / 2 + kernel


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _lods_one_df(t: NDArray[np.float64], r: float, d: float, infinite: bool, constant: float,
                 out: NDArray[np.float64]) -> None:
    """:func:`_lods_kernel` when r and d are the same for every feature."""
    half = (1 + d) / 2
    shrink = 1 - 1 / r
    for i in range(t.shape[0]):
        t2 = t[i] * t[i]
        if infinite:
            out[i] = constant + t2 * shrink / 2
        else:
            out[i] = constant + half * np.log((t2 + d) / (t2 / r + d))
