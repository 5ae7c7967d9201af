"""The reduce steps of the two-pass engine: what needs every feature at once.

1. The variance prior (limma's ``squeezeVar`` inside ``eBayes``): from the residual variances,
   df and means of all features, via :func:`manylm.moderate.ebayes.moderate_variances`.
2. The prior variance of non-zero coefficients for the B-statistic (limma's
   ``tmixture.vector``): it is estimated from the ``ceiling(proportion / 2 * n)`` largest |t|
   over all features. A first reduction counts the t statistics and finds their largest df
   and a floor under the top |t|; then each chunk proposes its own largest ones above the floor
   (after converting t to the largest df, as limma does when df differ), the proposals are
   merged, and the estimate is made from the merged top. Both reductions are associative and
   move a few numbers per chunk.

Smyth (2004), Statistical Applications in Genetics and Molecular Biology 3(1), sections 5-6.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from manylm.engine.chunk_model import ChunkModel
from manylm.moderate.bstatistic import (
    _convert_t,
    _largest_after_conversion,
    _largest_first,
    variance_from_top,
)
from manylm.moderate.ebayes import check_residuals, moderate_variances, pooled_residual_df
from manylm.moderate.moderated_fit import ModeratedFit
from manylm.moderate.squeeze import posterior_variance, variance_prior

__all__ = [
    "PriorEstimate",
    "RunningFloor",
    "ScalarPrior",
    "TRange",
    "TopCandidates",
    "TopFold",
    "candidate_floor",
    "chunk_top",
    "coefficient_prior",
    "estimate_prior",
    "merge_candidates",
    "merge_t_ranges",
    "scalar_prior",
    "share_of_top",
    "t_range",
    "top_candidates",
]


@dataclass(frozen=True)
class PriorEstimate:
    """The variance prior and, per feature, what moderating a chunk needs.

    Attributes
    ----------
    moderated : bool
    df_prior, s2_prior : float or array of shape (n_features,)
        Scalars unless robust (df) or trend (s2) make them per feature.
    s2_prior_median : float
        Median of ``s2_prior`` (the scale of the B-statistic's limits).
    s2_post, df_total : arrays of shape (n_features,)
    """

    moderated: bool
    df_prior: float | NDArray[np.float64]
    s2_prior: float | NDArray[np.float64]
    s2_prior_median: float
    s2_post: NDArray[np.float64]
    df_total: NDArray[np.float64]

    def per_feature(self) -> dict[str, NDArray[np.float64]]:
        """The per-feature arrays, by name (to store or to slice)."""
        arrays = {"s2_post": self.s2_post, "df_total": self.df_total}
        for name in ("df_prior", "s2_prior"):
            value = getattr(self, name)
            if np.ndim(value) > 0:
                arrays[name] = np.asarray(value, dtype=np.float64)
        return arrays

    def scalars(self) -> dict[str, float]:
        """The prior values that are the same for every feature."""
        return {name: float(getattr(self, name)) for name in ("df_prior", "s2_prior")
                if np.ndim(getattr(self, name)) == 0}

    def summary(self) -> dict[str, Any]:
        """min / median / max of each prior value, as the run record shows them."""
        out: dict[str, Any] = {}
        for name in ("df_prior", "s2_prior"):
            value = np.asarray(getattr(self, name), dtype=float)
            out[name] = float(value) if value.ndim == 0 else {
                "min": float(np.nanmin(value)), "median": float(np.nanmedian(value)),
                "max": float(np.nanmax(value))}
        return out


@dataclass(frozen=True)
class ScalarPrior:
    """A variance prior that is the same for every feature (no trend, not robust), without the
    per-feature posteriors: each chunk makes its own (:meth:`posterior`), with the arithmetic
    :func:`estimate_prior` applies to every feature: a distributed run moves a few numbers to
    the chunks instead of 16 bytes per feature, and a run on one machine makes them in the
    table pass, where the chunk is in cache, instead of 16 bytes per feature of fresh memory
    in the reduce (:func:`scalar_prior`).

    Attributes
    ----------
    moderated : bool
    df_prior, s2_prior, s2_prior_median : float
    df_pooled : float
        The residual df of all features summed: the largest total df (limma's
        ``df.total <- pmin(df.residual + df.prior, sum(df.residual))``).
    """

    moderated: bool
    df_prior: float
    s2_prior: float
    s2_prior_median: float
    df_pooled: float

    def posterior(self, residual_variance: NDArray[np.floating],
                  df_residual: NDArray[np.floating]) -> dict[str, Any]:
        """A chunk's posterior variances and total df (and the scalar prior values), as
        :meth:`PriorEstimate.per_feature` sliced to the chunk and :meth:`PriorEstimate.scalars`
        give them."""
        variance = np.asarray(residual_variance, dtype=np.float64)
        df = np.asarray(df_residual, dtype=np.float64)
        if not self.moderated:
            return {"s2_post": variance, "df_total": df, "df_prior": 0.0, "s2_prior": np.nan}
        if np.isfinite(self.df_prior) and variance.ndim == 1:  # one compiled pass
            s2_post, df_total = np.empty(variance.shape[0]), np.empty(variance.shape[0])
            _scalar_posterior(variance, np.broadcast_to(df, variance.shape), self.s2_prior,
                              self.df_prior, self.df_pooled, s2_post, df_total)
            return {"s2_post": s2_post, "df_total": df_total, **self.scalars()}
        variance = np.where(df == 0, 0.0, variance)  # squeeze_var: no residual df, variance 0
        s2_post = posterior_variance(variance, df, self.s2_prior, self.df_prior)
        df_total = np.minimum(df + self.df_prior, self.df_pooled)
        return {"s2_post": s2_post, "df_total": df_total, **self.scalars()}

    def scalars(self) -> dict[str, float]:
        return {"df_prior": self.df_prior, "s2_prior": self.s2_prior}

    def summary(self) -> dict[str, Any]:
        """As :meth:`PriorEstimate.summary` gives scalar priors: their values."""
        return dict(self.scalars())


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _scalar_posterior(variance, df, s2_prior, df_prior, df_pooled, s2_post, df_total):
    """:meth:`ScalarPrior.posterior` with a finite prior df, element by element: a variance
    on 0 df counts as 0 (``squeeze_var``), the posterior is ``posterior_variance``'s
    arithmetic, and the total df is at most ``df_pooled`` (NaN stays NaN, as
    ``numpy.minimum``)."""
    weighted_prior = df_prior * s2_prior
    for i in range(variance.shape[0]):
        d = df[i]
        v = 0.0 if d == 0 else variance[i]
        s2_post[i] = (d * v + weighted_prior) / (d + df_prior)
        total = d + df_prior
        df_total[i] = df_pooled if total > df_pooled else total


def scalar_prior(model: ChunkModel, residual_variance: NDArray[np.floating],
                 df_residual: NDArray[np.floating]) -> ScalarPrior | None:
    """Reduce 1 when the prior is the same for every feature (no trend, not robust): the
    :class:`ScalarPrior` of :func:`estimate_prior`, without making any posterior (the chunks
    make theirs, where they are); None when the prior varies by feature.

    Parameters
    ----------
    model : ChunkModel
    residual_variance, df_residual : arrays of shape (n_features,)
    """
    if model.trend or model.robust:
        return None
    variance: NDArray[np.float64] = np.asarray(residual_variance, dtype=np.float64)
    df: NDArray[np.float64] = np.asarray(df_residual, dtype=np.float64)
    check_residuals(df, variance)
    if not model.moderate:
        return ScalarPrior(False, 0.0, np.nan, np.nan, pooled_residual_df(df))
    df_prior, s2_prior = variance_prior(variance, df)
    if np.ndim(df_prior) or np.ndim(s2_prior):  # one feature: its own variance
        return None
    return ScalarPrior(True, float(df_prior), float(s2_prior), float(np.median(s2_prior)),
                       pooled_residual_df(df))


def estimate_prior(model: ChunkModel, residual_variance: NDArray[np.floating],
                   df_residual: NDArray[np.floating],
                   mean: NDArray[np.floating] | None) -> PriorEstimate:
    """Reduce 1: the variance prior from every feature (limma's ``eBayes`` up to the prior).

    Parameters
    ----------
    model : ChunkModel
    residual_variance, df_residual : arrays of shape (n_features,)
    mean : array of shape (n_features,), optional
        Needed with ``trend``.
    """
    variance: NDArray[np.float64] = np.asarray(residual_variance, dtype=np.float64)
    df: NDArray[np.float64] = np.asarray(df_residual, dtype=np.float64)
    check_residuals(df, variance)
    if not model.moderate:
        return PriorEstimate(False, 0.0, np.nan, np.nan, variance, df)
    squeezed, df_total = moderate_variances(
        variance, df, covariate=mean if model.trend else None,
        robust=model.robust, winsor_tail_p=model.winsor_tail_p)
    median = float(np.median(np.asarray(squeezed.var_prior)))
    return PriorEstimate(True, squeezed.df_prior, squeezed.var_prior, median,
                         np.asarray(squeezed.var_post, dtype=np.float64),
                         np.asarray(df_total, dtype=np.float64))


@dataclass(frozen=True)
class TopCandidates:
    """A chunk's largest |t| (converted to the largest df), largest first, ties by row.

    Attributes
    ----------
    t : array of shape (k,)
    stdev_unscaled : array of shape (k,)
    rows : int array of shape (k,)
        Rows in the whole matrix.
    """

    t: NDArray[np.float64]
    stdev_unscaled: NDArray[np.float64]
    rows: NDArray[np.int64]


@dataclass(frozen=True)
class TRange:
    """Over some features: how many have a t, their largest df, and the largest |t| there.

    Attributes
    ----------
    n_valid : int
    df_max : float
    top_t : array, descending
        The largest |t| among the features whose df is ``df_max`` (at most ``n_keep``).
    """

    n_valid: int
    df_max: float
    top_t: NDArray[np.float64]


def t_range(result: ModeratedFit, j: int, n_keep: int, floor: float = -np.inf) -> TRange:
    """A chunk's :class:`TRange` for coefficient ``j``, keeping up to ``n_keep`` largest |t|
    (only those at least ``floor``: a known lower bound of the overall ``n_keep``-th)."""
    t = result.t_of(j)
    valid = ~np.isnan(t)
    if not valid.any():
        return TRange(0, -np.inf, np.empty(0))
    df = np.asarray(result.df_total, dtype=np.float64)[valid]
    df_max = float(np.max(df))
    top = np.abs(t[valid][df == df_max])
    if floor > -np.inf:
        top = top[top >= floor]
    return TRange(int(valid.sum()), df_max, _largest(top, n_keep))


def merge_t_ranges(parts: list[TRange], n_keep: int) -> TRange:
    """Several :class:`TRange` as one (associative: chunks can be merged in any grouping)."""
    n_valid = sum(p.n_valid for p in parts)
    df_max = max((p.df_max for p in parts), default=-np.inf)
    tops = [p.top_t for p in parts if p.df_max == df_max]
    return TRange(n_valid, df_max, _largest(np.concatenate(tops) if tops else np.empty(0),
                                            n_keep))


def candidate_floor(merged: TRange, n_top: int) -> float:
    """A |t| below which no feature can be among the ``n_top`` largest converted |t|.

    Converting t to more df never increases |t|, and leaves it unchanged at ``df_max``: the
    ``n_top``-th largest |t| among the features on ``df_max`` df is thus at most the
    ``n_top``-th largest converted |t|, which in turn bounds the raw |t| of every feature in the
    top. Chunks then convert only the few features above it (-inf when there are too few).
    """
    if n_top < 1 or merged.top_t.shape[0] < n_top:
        return -np.inf
    return float(merged.top_t[n_top - 1])


def share_of_top(n_keep: int, rows: int, n_rows: int) -> int:
    """How many of its largest |t| a chunk of ``rows`` of ``n_rows`` rows gives to a floor:
    half as many again as its share of the ``n_keep``, and 32 more. Merged (a subset of all
    the values), their ``n_keep``-th largest (:func:`candidate_floor`) is at most the overall
    one: a floor every chunk can use at once, where no running floor is shared."""
    return min(n_keep, int(np.ceil(1.5 * n_keep * rows / max(n_rows, 1))) + 32)


def _largest(values: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    if values.shape[0] > n:
        values = np.partition(values, values.shape[0] - n)[values.shape[0] - n:]
    return np.sort(values)[::-1]


def top_candidates(result: ModeratedFit, j: int, *, n_top: int, df_max: float,
                   first_row: int, floor: float = -np.inf) -> TopCandidates:
    """A chunk's ``n_top`` largest |t| of coefficient ``j`` on ``df_max`` df (limma's order).

    Only features with a raw |t| of at least ``floor`` (see :func:`candidate_floor`) are
    considered, and converted.
    """
    t = result.t_of(j)
    with np.errstate(invalid="ignore"):
        valid = np.flatnonzero(~np.isnan(t) & (np.abs(t) >= floor))
    t_abs = np.abs(t[valid])
    df = np.asarray(result.df_total, dtype=np.float64)[valid]
    k = min(n_top, valid.shape[0])
    if k == 0:
        empty = np.empty(0)
        return TopCandidates(empty, empty, np.empty(0, dtype=np.int64))
    if np.any(df < df_max):
        picked = _largest_after_conversion(t_abs, df, df_max, k)
        values = _convert_t(t_abs[picked], df[picked], df_max)
    else:
        picked = _largest_first(t_abs, k)
        values = t_abs[picked]
    stdev = np.asarray(result.fit.stdev_unscaled[:, j], dtype=np.float64)[valid][picked]
    return TopCandidates(np.asarray(values, dtype=np.float64), stdev,
                         (first_row + valid[picked]).astype(np.int64))


def merge_candidates(parts: list[TopCandidates], n_top: int) -> TopCandidates:
    """The ``n_top`` largest of several chunks' candidates (ties in row order, as R's order)."""
    t = np.concatenate([p.t for p in parts]) if parts else np.empty(0)
    stdev = np.concatenate([p.stdev_unscaled for p in parts]) if parts else np.empty(0)
    rows = np.concatenate([p.rows for p in parts]) if parts else np.empty(0, dtype=np.int64)
    if 0 < n_top < t.shape[0]:
        # only the values from the n_top-th largest up (ties included) can be in the top
        threshold = np.partition(t, t.shape[0] - n_top)[t.shape[0] - n_top]
        kept = np.flatnonzero(t >= threshold)
        t, stdev, rows = t[kept], stdev[kept], rows[kept]
    order = np.lexsort((rows, -t))[:n_top]
    return TopCandidates(t[order], stdev[order], rows[order])


def coefficient_prior(top: TopCandidates, n_valid: int, df_max: float, *, proportion: float,
                      stdev_coef_lim: tuple[float, float], s2_prior_median: float) -> float:
    """Reduce 2: the prior variance of a non-zero coefficient (limma's ``tmixture.vector``).

    ``top`` holds the ``ceiling(proportion / 2 * n_valid)`` largest converted |t| of all
    features; the estimate is the mean over them of the variance that puts each at its
    expected order statistic, within ``stdev_coef_lim^2 / s2_prior_median``; when there are no
    t statistics, ``1 / s2_prior_median`` (as :meth:`ModeratedFit.var_prior_of`).
    """
    n_target = int(np.ceil(proportion / 2 * n_valid))
    if n_target < 1 or top.t.shape[0] < n_target:
        return 1 / s2_prior_median
    p = max(n_target / n_valid, proportion)
    limits = np.asarray(stdev_coef_lim, dtype=np.float64) ** 2 / s2_prior_median
    value = variance_from_top(top.t[:n_target], top.stdev_unscaled[:n_target] ** 2, n_valid, p,
                              df_max, limits)
    return 1 / s2_prior_median if np.isnan(value) else value


def chunk_top(result: ModeratedFit, first_row: int, n_keep: int,
              running: RunningFloor | None = None,
              known_floor: float = -np.inf) -> tuple[TRange, TopCandidates]:
    """A chunk's :class:`TRange` of its first coefficient and its own largest |t|, converted to
    its own largest df, above its own floor: the chunk's part of the overall top when its
    largest df is the overall one (one pass over the chunks instead of two).

    With ``running`` (chunks on threads of one process), the floor is also at least the one of
    the chunks seen so far, which makes far fewer candidates once a few chunks are in. Chunks
    run at once on a cluster have no running floor: ``known_floor`` (see :func:`share_of_top`)
    plays its part.
    """
    found = t_range(result, 0, n_keep, known_floor)
    floor = max(candidate_floor(found, n_keep), known_floor)
    if running is not None:
        floor = max(floor, running.add(found))
    own = top_candidates(result, 0, n_top=n_keep, df_max=found.df_max, first_row=first_row,
                         floor=floor)
    return found, own


class RunningFloor:
    """The ``n_keep``-th largest |t| on the largest df of the chunks seen so far (thread-safe).

    While every chunk has the overall largest df, it is at most the overall ``n_keep``-th
    largest, hence at most the overall floor of :func:`coefficient_prior_from_tops` (whose top
    holds at most ``n_keep``): a valid floor for any chunk's candidates. A chunk with another
    largest df gets no running floor (the reduce then proposes every chunk's top again anyway).
    """

    def __init__(self, n_keep: int) -> None:
        self.n_keep = n_keep
        self._merged = TRange(0, -np.inf, np.empty(0))
        self._lock = threading.Lock()

    def add(self, found: TRange) -> float:
        """Merge a chunk's :class:`TRange`; the floor for that chunk's candidates."""
        with self._lock:
            self._merged = merge_t_ranges([self._merged, found], self.n_keep)
            if found.df_max != self._merged.df_max:
                return -np.inf
            return candidate_floor(self._merged, self.n_keep)


class TopFold:
    """The chunks' :func:`chunk_top` folded as they arrive, in row order, in bounded memory.

    Holds the merged :class:`TRange` (at most ``n_keep`` values), the largest df seen, and the
    candidates: a chunk's are first cut to those at or above the running floor (the
    ``n_keep``-th largest |t| on the largest df so far, see :class:`RunningFloor`), and the
    pile is merged down to its ``n_keep`` largest whenever it passes ``2 n_keep``: a few times
    ``n_keep`` values at most, however many chunks (the overall top has at most ``n_keep``).
    """

    def __init__(self, n_keep: int) -> None:
        self.n_keep = n_keep
        self.merged = TRange(0, -np.inf, np.empty(0))
        self.df_maxes: set[float] = set()
        self._parts: list[TopCandidates] = []
        self._size = 0

    def add(self, found: TRange, own: TopCandidates) -> None:
        self.merged = merge_t_ranges([self.merged, found], self.n_keep)
        if found.n_valid:
            self.df_maxes.add(found.df_max)
        if len(self.df_maxes) == 1:  # one largest df so far: the running floor applies
            keep = own.t >= candidate_floor(self.merged, self.n_keep)
            if not keep.all():
                own = TopCandidates(own.t[keep], own.stdev_unscaled[keep], own.rows[keep])
        self._parts.append(own)
        self._size += own.t.shape[0]
        if self._size > 2 * self.n_keep:
            self._parts = [merge_candidates(self._parts, self.n_keep)]
            self._size = self._parts[0].t.shape[0]

    def prior(self, *, proportion: float, stdev_coef_lim: tuple[float, float],
              s2_prior_median: float,
              propose: Callable[[int, float, float], list[TopCandidates]]) -> float:
        """Reduce 2 from every chunk folded in.

        When every chunk's largest df is the overall largest (complete rows in every chunk,
        the usual case), the overall top is among the folded candidates: every feature in it
        has a |t| at least each floor used, which is at most the overall floor. Otherwise
        ``propose(n_top, df_max, floor)`` has each chunk propose its largest |t| converted to
        the overall largest df, above the overall floor (:func:`top_candidates`).
        """
        merged = self.merged
        n_top = int(np.ceil(proportion / 2 * merged.n_valid))
        if len(self.df_maxes) > 1:
            proposals = propose(n_top, merged.df_max, candidate_floor(merged, n_top))
        else:
            proposals = self._parts
        return coefficient_prior(merge_candidates(proposals, n_top), merged.n_valid,
                                 merged.df_max, proportion=proportion,
                                 stdev_coef_lim=stdev_coef_lim,
                                 s2_prior_median=s2_prior_median)
