"""Library sizes and normalisation factors for count matrices (edgeR's ``calcNormFactors``).

TMM: Robinson & Oshlack (2010), "A scaling normalization method for differential expression
analysis of RNA-seq data", Genome Biology 11:R25. TMMwsp (TMM with singleton pairing), upper
quartile (Bullard et al. 2010) and RLE (Anders & Huber 2010) as edgeR 3.40 computes them. The
loop is over samples (each step vectorised over genes); factors are scaled to multiply to one.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike, NDArray

from manylm.errors import InputError, ManylmWarning
from manylm.parallel import parallel_map

__all__ = ["NORMALIZATION_METHODS", "norm_factors"]

NORMALIZATION_METHODS = ("TMM", "TMMwsp", "upperquartile", "RLE", "none")


def norm_factors(
    counts: ArrayLike,
    *,
    method: str = "TMM",
    lib_size: ArrayLike | None = None,
    ref_column: int | None = None,
    logratio_trim: float = 0.3,
    sum_trim: float = 0.05,
    do_weighting: bool = True,
    a_cutoff: float = -1e10,
    p: float = 0.75,
) -> NDArray[np.float64]:
    """Normalisation factors of each sample (column) of a genes x samples count matrix.

    Reproduces edgeR's ``calcNormFactors`` (edgeR 3.40.2) for ``method`` in TMM, TMMwsp,
    upperquartile, RLE and none; ``ref_column`` is 0-based. The effective library size of a
    sample is ``lib_size * factor``.
    """
    if method not in NORMALIZATION_METHODS:
        raise InputError(
            f"The normalisation method must be one of {', '.join(NORMALIZATION_METHODS)}. "
            f"Got {method!r}."
        )
    x = np.asarray(counts, dtype=np.float64)
    n_samples = x.shape[1]
    sizes = x.sum(axis=0) if lib_size is None else np.broadcast_to(
        np.asarray(lib_size, dtype=np.float64), (n_samples,)).copy()
    x = x[(x > 0).any(axis=1)]
    if x.shape[0] == 0 or n_samples == 1:
        method = "none"
    if method == "TMM":
        if ref_column is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ManylmWarning)
                f75 = _upper_quartile(x, sizes, 0.75)
            if np.median(f75) < 1e-20:
                ref_column = int(np.argmax(np.sqrt(x).sum(axis=0)))
            else:
                ref_column = int(np.argmin(np.abs(f75 - f75.mean())))
        reference = ref_column
        factors = np.array(parallel_map(
            lambda i: _tmm(x[:, i], x[:, reference], sizes[i], sizes[reference],
                           logratio_trim, sum_trim, do_weighting, a_cutoff),
            range(n_samples)))
    elif method == "TMMwsp":
        if ref_column is None:
            ref_column = int(np.argmax(np.sqrt(x).sum(axis=0)))
        factors = np.array([
            _tmm_wsp(x[:, i], x[:, ref_column], sizes[i], sizes[ref_column], logratio_trim,
                     sum_trim, do_weighting)
            for i in range(n_samples)
        ])
    elif method == "RLE":
        factors = _rle(x) / sizes
    elif method == "upperquartile":
        factors = _upper_quartile(x, sizes, p)
    else:
        factors = np.ones(n_samples)
    return np.asarray(factors / np.exp(np.mean(np.log(factors))), dtype=np.float64)


def _upper_quartile(x: NDArray[np.float64], sizes: NDArray[np.float64],
                    p: float) -> NDArray[np.float64]:
    quantiles = np.quantile(x, p, axis=0)
    if np.min(quantiles) == 0:
        warnings.warn("One or more upper quartiles are zero.", ManylmWarning, stacklevel=3)
    return np.asarray(quantiles / sizes, dtype=np.float64)


def _rle(x: NDArray[np.float64]) -> NDArray[np.float64]:
    with np.errstate(divide="ignore"):
        geometric_mean = np.exp(np.mean(np.log(x), axis=1))
    positive = geometric_mean > 0
    return np.asarray(np.median(x[positive] / geometric_mean[positive, None], axis=0))


def _tmm(obs: NDArray[np.float64], ref: NDArray[np.float64], n_obs: float, n_ref: float,
         logratio_trim: float, sum_trim: float, do_weighting: bool, a_cutoff: float) -> float:
    """edgeR's ``.calcFactorTMM``: weighted trimmed mean of the log ratios."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log2((obs / n_obs) / (ref / n_ref))
        abs_expression = (np.log2(obs / n_obs) + np.log2(ref / n_ref)) / 2
        variance = (n_obs - obs) / n_obs / obs + (n_ref - ref) / n_ref / ref
    finite = np.isfinite(log_ratio) & np.isfinite(abs_expression) & (abs_expression > a_cutoff)
    log_ratio, abs_expression, variance = log_ratio[finite], abs_expression[finite], variance[
        finite]
    if log_ratio.size == 0 or np.max(np.abs(log_ratio)) < 1e-6:
        return 1.0
    n = log_ratio.size
    low_ratio = np.floor(n * logratio_trim) + 1
    high_ratio = n + 1 - low_ratio
    low_sum = np.floor(n * sum_trim) + 1
    high_sum = n + 1 - low_sum
    rank_ratio = average_ranks(log_ratio)
    rank_sum = average_ranks(abs_expression)
    keep = ((rank_ratio >= low_ratio) & (rank_ratio <= high_ratio) & (rank_sum >= low_sum)
            & (rank_sum <= high_sum))
    if do_weighting:
        value = np.nansum(log_ratio[keep] / variance[keep]) / np.nansum(1 / variance[keep])
    else:
        value = np.nanmean(log_ratio[keep]) if keep.any() else np.nan
    return float(2 ** (0.0 if np.isnan(value) else value))


def _tmm_wsp(obs: NDArray[np.float64], ref: NDArray[np.float64], n_obs: float, n_ref: float,
             logratio_trim: float, sum_trim: float, do_weighting: bool) -> float:
    """edgeR's ``.calcFactorTMMwsp``: TMM with singleton pairing (for sparse counts)."""
    eps = 1e-14
    positive_obs = obs > eps
    positive_ref = ref > eps
    pattern = 2 * positive_obs.astype(int) + positive_ref.astype(int)
    present = pattern != 0
    obs, ref, pattern = obs[present], ref[present], pattern[present]
    zero_obs = pattern == 1
    zero_ref = pattern == 2
    single = zero_obs | zero_ref
    n_singles = min(int(zero_obs.sum()), int(zero_ref.sum()))
    if n_singles > 0:
        ref_k = np.sort(ref[single])[::-1][:n_singles]
        obs_k = np.sort(obs[single])[::-1][:n_singles]
        obs = np.concatenate([obs[~single], obs_k])
        ref = np.concatenate([ref[~single], ref_k])
    else:
        obs, ref = obs[~single], ref[~single]
    n = obs.size
    if n == 0:
        return 1.0
    obs_p = obs / n_obs
    ref_p = ref / n_ref
    log_ratio = np.log2(obs_p / ref_p)
    average = 0.5 * np.log2(obs_p * ref_p)
    if np.max(np.abs(log_ratio)) < 1e-6:
        return 1.0
    shrunk = np.log2(((obs + 0.5) / (n_obs + 0.5)) / ((ref + 0.5) / (n_ref + 0.5)))
    order_ratio = np.lexsort((shrunk, log_ratio))
    order_average = np.argsort(average, kind="stable")
    low_ratio = int(n * logratio_trim) + 1
    high_ratio = n + 1 - low_ratio
    keep_ratio = np.zeros(n, dtype=bool)
    keep_ratio[order_ratio[low_ratio - 1 : high_ratio]] = True
    low_average = int(n * sum_trim) + 1
    high_average = n + 1 - low_average
    keep_average = np.zeros(n, dtype=bool)
    keep_average[order_average[low_average - 1 : high_average]] = True
    keep = keep_ratio & keep_average
    log_ratio = log_ratio[keep]
    if do_weighting:
        obs_p, ref_p = obs_p[keep], ref_p[keep]
        variance = (1 - obs_p) / obs_p / n_obs + (1 - ref_p) / ref_p / n_ref
        weight = (1 + 1e-6) / (variance + 1e-6)
        value = float(np.sum(weight * log_ratio) / np.sum(weight))
    else:
        value = float(np.mean(log_ratio))
    return float(2**value)


def average_ranks(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Ranks 1..n with ties given their average rank (R's ``rank``), via a fast sort."""
    order = np.argsort(values)
    ordered = values[order]
    n = values.shape[0]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    ends = np.concatenate([starts[1:], [n]])
    run_rank = (starts + ends + 1) / 2.0  # mean of positions start+1 .. end
    ranks = np.empty(n)
    ranks[order] = np.repeat(run_rank, ends - starts)
    return ranks
