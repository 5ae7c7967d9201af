"""Squared "leading log-fold-change" distances between samples (the kernel of limma's plotMDS).

For every pair of samples (i, j), limma averages the ``top`` largest squared differences
(x_gi - x_gj)^2 over features g. Done directly that is n_pairs x n_features values to partition
(4,950 pairs x 450,000 features for 100 samples: tens of seconds). Most features can be ruled
out without computing their differences, and the answer stays exact:

1. On a fixed random subset of the features, find for every pair the value tau_ij that about
   three times ``top`` of all features should exceed (an order statistic of the subset).
2. With c_g the midpoint and h_g the half-range of feature g over the samples,
   |x_gi - x_gj| <= |x_gi - c_g| + h_g. A feature whose bound, squared, is below
   min_{j<i} tau_ij cannot reach tau_ij in any pair (i, j < i), so sample i is compared with
   the earlier samples on its candidate features only.
3. If a pair has at least ``top`` computed values >= tau_ij, every feature left out lies below
   its top values and the mean is exact; a pair for which the guess tau_ij was too high (rare)
   is recomputed on all features.

Only the summation order differs from the direct computation (about one unit in the last
place).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from manylm.parallel import parallel_map

__all__ = ["common_squared_distances", "leading_squared_distances"]

_DIRECT_FEATURES = 50_000  # below this many features partitioning everything is faster
_BLOCK_VALUES = 1 << 22  # differences held at once per worker (32 MiB)
_EPSILON = np.finfo(np.float64).eps
_SEED = 20240601


def leading_squared_distances(by_feature: NDArray[np.float64], top: int, *,
                              subset_size: int | None = None) -> NDArray[np.float64]:
    """Mean of the ``top`` largest squared differences for every pair of samples.

    Parameters
    ----------
    by_feature : array of shape (n_features, n_samples)
        Finite values.
    top : int
        1 <= top <= n_features.
    subset_size : int, optional
        Size of the random subset that sets the thresholds (default max(10,000, 20 * top));
        tests give a small one to force the screened path on small data.

    Returns
    -------
    array of shape (n_samples, n_samples)
        Symmetric, zero diagonal.
    """
    n_features = by_feature.shape[0]
    size = subset_size if subset_size is not None else max(10_000, 20 * top)
    expected_rank = int(np.ceil(3 * top * size / n_features))
    worthwhile = size < n_features and expected_rank < size // 2
    if not worthwhile or (subset_size is None and n_features <= _DIRECT_FEATURES):
        by_sample = np.ascontiguousarray(by_feature.T)
        return _symmetric(_direct(by_sample, top)[0])
    return _symmetric(_screened(np.ascontiguousarray(by_feature), top, size, expected_rank))


def _direct(by_sample: NDArray[np.float64], top: int
            ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Lower triangles: mean of the ``top`` largest squared differences, and the smallest of
    those ``top`` values, by partitioning every pair's differences."""
    n_samples, n_values = by_sample.shape
    means = np.zeros((n_samples, n_samples))
    kth = np.zeros((n_samples, n_samples))
    cut = n_values - top
    per_block = max(1, _BLOCK_VALUES // n_values)

    def one_sample(sample: int) -> None:
        for start in range(0, sample, per_block):  # bounded memory per worker
            stop = min(sample, start + per_block)
            squared = np.subtract(by_sample[start:stop], by_sample[sample])
            np.multiply(squared, squared, out=squared)
            squared.partition(cut, axis=1)
            means[sample, start:stop] = squared[:, cut:].mean(axis=1)
            kth[sample, start:stop] = squared[:, cut]

    # Later samples have more partners: hand them out first for an even split across threads.
    parallel_map(one_sample, range(n_samples - 1, 0, -1))
    return means, kth


def _screened(by_feature: NDArray[np.float64], top: int, size: int,
              expected_rank: int) -> NDArray[np.float64]:
    n_features, n_samples = by_feature.shape
    generator = np.random.default_rng(_SEED)
    subset = np.sort(generator.choice(n_features, size=size, replace=False))
    _, guess = _direct(np.ascontiguousarray(by_feature[subset].T), expected_rank)
    earlier = np.tri(n_samples, k=-1, dtype=bool)
    threshold = np.where(earlier, guess, np.inf).min(axis=1)
    candidates = _candidates(by_feature, threshold)
    means = np.zeros((n_samples, n_samples))
    reached = np.zeros((n_samples, n_samples), dtype=np.int64)

    def one_sample(sample: int) -> None:
        rows = candidates[sample]
        values = by_feature[:, :sample + 1] if rows is None else by_feature[rows, :sample + 1]
        per_block = max(1, _BLOCK_VALUES // max(values.shape[0], 1))
        for start in range(0, sample, per_block):
            stop = min(sample, start + per_block)
            # Partners in rows: the selection below then runs along long contiguous rows.
            squared = np.subtract(values[:, start:stop].T, values[:, sample])
            np.multiply(squared, squared, out=squared)
            counts, tops = _largest_above(squared, guess[sample, start:stop], top)
            reached[sample, start:stop] = counts
            means[sample, start:stop] = tops

    parallel_map(one_sample, range(n_samples - 1, 0, -1))
    for sample, partner in np.argwhere(earlier & (reached < top)):
        # The guess was too high for this pair (rare): all its differences.
        squared = by_feature[:, sample] - by_feature[:, partner]
        squared *= squared
        cut = n_features - top
        means[sample, partner] = np.partition(squared, cut)[cut:].mean()
    return means


def _candidates(by_feature: NDArray[np.float64], threshold: NDArray[np.float64]
                ) -> list[NDArray[np.intp] | None]:
    """For each sample, the features whose difference with any earlier sample may reach the
    sample's threshold (None: nearly all, use every feature)."""
    n_features, n_samples = by_feature.shape
    possible = np.empty((n_features, n_samples), dtype=bool)
    chunk = max(1, _BLOCK_VALUES // (4 * n_samples))
    for start in range(0, n_features, chunk):  # features in chunks: bounded temporaries
        values = by_feature[start:start + chunk]
        low, high = values.min(axis=1), values.max(axis=1)
        half_range = (high - low) / 2
        centre = low + half_range
        # Rounding in the bound (about |c_g| eps) must never rule out a feature that belongs.
        reach = half_range + 8 * _EPSILON * (np.abs(centre) + half_range)
        bound = np.abs(values - centre[:, None])
        bound += reach[:, None]
        np.multiply(bound, bound, out=bound)
        np.greater_equal(bound, threshold[None, :], out=possible[start:start + chunk])
    by_sample = np.ascontiguousarray(possible.T)
    found: list[NDArray[np.intp] | None] = []
    for sample in range(n_samples):
        rows = np.flatnonzero(by_sample[sample])
        found.append(None if rows.size >= 0.8 * n_features else rows)
    return found


def _largest_above(squared: NDArray[np.float64], limit: NDArray[np.float64],
                   top: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Per row: how many values reach ``limit``, and the mean of the ``top`` largest (NaN
    when fewer than ``top`` reach it). Only the values above the limit are sorted."""
    above = squared >= limit[:, None]
    counts = np.count_nonzero(above, axis=1)
    values = squared[above]  # row-major: grouped by row
    ends = np.cumsum(counts)
    tops = np.full(squared.shape[0], np.nan)
    for row in np.flatnonzero(counts >= top):  # one small sort per pair of samples
        segment = values[ends[row] - counts[row]:ends[row]]
        tops[row] = np.partition(segment, segment.size - top)[segment.size - top:].mean()
    return counts, tops


def _symmetric(lower: NDArray[np.float64]) -> NDArray[np.float64]:
    return lower + lower.T


def common_squared_distances(by_feature: NDArray[np.float64], top: int) -> NDArray[np.float64]:
    """Mean squared differences over the ``top`` most variable features (limma "common").

    Parameters
    ----------
    by_feature : array of shape (n_features, n_samples)
    top : int

    Returns
    -------
    array of shape (n_samples, n_samples)
    """
    if by_feature.shape[0] > top:
        spread = ((by_feature - by_feature.mean(axis=1)[:, None]) ** 2).mean(axis=1)
        by_feature = by_feature[np.argsort(-spread, kind="stable")[:top]]
    by_sample = np.ascontiguousarray(by_feature.T)
    n_samples = by_sample.shape[0]
    squared = np.zeros((n_samples, n_samples))
    for sample in range(1, n_samples):
        differences = by_sample[:sample] - by_sample[sample]
        squared[sample, :sample] = (differences * differences).mean(axis=1)
    return _symmetric(squared)
