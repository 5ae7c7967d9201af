"""How many surrogate variables: sva's ``num.sv`` ("be" permutations or Leek's asymptotic rule).

* ``"be"`` (Buja & Eyuboglu 1992, as in Leek & Storey 2007): the share of variance of each
  singular value of the residuals (after the full model) is compared with the same share after
  permuting every feature's residuals independently, ``n_permutations`` times; a component is
  significant while its permutation p-value (made non-decreasing) is at most 0.1.
* ``"leek"`` (Leek 2011, Biometrics 67:344): eigenvalues of a scaled, centred residual
  cross-product of the first 10%, 20%, ..., 100% of the features are counted above thresholds
  ``a m^(-1/3) n`` for 100 values of ``a`` in [0, 2]; the count is read where it is stable.

Both are computed from n x n cross-products accumulated over feature blocks.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.confounders.nested_models import DesignSpec, feature_matrix, resolve_design
from manylm.confounders.sva_blocks import (
    map_row_blocks,
    orthonormal_chain,
    projected_residual_gram,
)
from manylm.errors import DataError, InputError, ManylmWarning

__all__ = [
    "NUM_SV_METHODS",
    "be_count",
    "be_p_values",
    "leek_count",
    "leek_counts",
    "leek_selection",
    "num_sv",
]

NUM_SV_METHODS = ("be", "leek")
BE_SIGNIFICANCE = 0.1  # num.sv's permutation p-value cut-off
_LEEK_GRID = np.linspace(0.0, 2.0, 100)  # R's seq(0, 2, length = 100)
_LEEK_STEPS = 10


def num_sv(
    data: Any,
    design: DesignSpec,
    *,
    samples: pd.DataFrame | None = None,
    reference: Mapping[str, object] | None = None,
    method: str = "be",
    n_permutations: int = 20,
    seed: int | np.random.SeedSequence | None = None,
    permutations: NDArray[np.integer] | None = None,
    block_rows: int | None = None,
) -> int:
    """The number of surrogate variables in ``data`` beyond the model (sva's ``num.sv``).

    Parameters
    ----------
    data : DataFrame or array of shape (n_features, n_samples)
        Features with a missing or infinite value are left out (with a warning), as are
        constant ones.
    design : Design, formula, DataFrame or array
        The full model (``mod``); a formula needs ``samples``.
    samples, reference
        Sample sheet and reference levels for a formula design.
    method : {"be", "leek"}
    n_permutations : int
        Permutations for ``"be"`` (R's ``B = 20``).
    seed : int or SeedSequence, optional
        Seeds the permutations of ``"be"`` (same seed, same answer on any machine and for any
        block size; R's ``set.seed`` stream is not reproduced).
    permutations : int array of shape (n_permutations, n_features, n_samples), optional
        Precomputed 0-based permutations of each feature's samples (used instead of random
        ones; for comparing with R given R's own permutations).
    block_rows : int, optional
        Features per block (default: a few megabytes).

    Returns
    -------
    int

    Notes
    -----
    ``"leek"`` deviates from R in one place, on purpose. R's rule scales the variability of
    each count by that of the count at a = 0, which in exact arithmetic never varies (it counts
    the n - p positive eigenvalues); in R it varies only through the signs of rounding noise in
    the p eigenvalues that are exactly zero, so R's answer can change with the last bit of the
    data (bladderbatch, ``~ cancer``: 2 from the original values, 38 from the same values
    rounded to float32). Here that baseline variance is the variance of the number of positive
    signs among p fair coins, p / 4, which gives R's answer when R's noise behaves typically
    (2 on bladderbatch from either version of the data) and the same answer on every machine.
    """
    if method not in NUM_SV_METHODS:
        raise InputError(f"The 'method' parameter must be one of {NUM_SV_METHODS}; got "
                         f"{method!r}.")
    full_design = resolve_design(design, samples=samples, reference=reference)
    values, _ = feature_matrix(data, full_design.sample_ids)
    values = usable_rows(values, "num_sv")
    full = full_design.matrix
    if method == "leek":
        return leek_count(values, full, block_rows=block_rows)
    if n_permutations < 1:
        raise InputError(f"'n_permutations' must be at least 1; got {n_permutations}.")
    if permutations is not None:
        permutations = np.asarray(permutations)
        expected = (permutations.shape[0], values.shape[0], values.shape[1])
        if permutations.ndim != 3 or permutations.shape != expected:
            raise InputError(f"'permutations' must have shape (n_permutations, n_features, "
                             f"n_samples) = (B, {values.shape[0]}, {values.shape[1]}); got "
                             f"{permutations.shape}.")
    return be_count(values, full, n_permutations=n_permutations, seed=seed,
                    permutations=permutations, block_rows=block_rows)


def usable_rows(values: NDArray[np.floating], what: str) -> NDArray[np.floating]:
    """The rows with finite values (others dropped, with a warning)."""
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        warnings.warn(f"{int((~finite).sum())} feature(s) with missing or infinite values were "
                      f"left out of {what}.", ManylmWarning, stacklevel=3)
        values = values[finite]
    if values.shape[0] == 0:
        raise DataError(f"No feature without missing values is left for {what}.")
    return values


# ------------------------------------------------------------------------------ "be" kernel
def be_count(values: NDArray[np.floating], full: NDArray[np.float64], *,
             n_permutations: int = 20, seed: int | np.random.SeedSequence | None = None,
             permutations: NDArray[np.integer] | None = None,
             n_components: int | None = None, block_rows: int | None = None) -> int:
    """Significant components by Buja & Eyuboglu's permutation test (num.sv ``"be"``).

    The number of leading components whose permutation p-value (from :func:`be_p_values`) is
    at most 0.1.
    """
    p_values = be_p_values(values, full, n_permutations=n_permutations, seed=seed,
                           permutations=permutations, n_components=n_components,
                           block_rows=block_rows)
    return int(np.sum(p_values <= BE_SIGNIFICANCE))


def be_p_values(values: NDArray[np.floating], full: NDArray[np.float64], *,
                n_permutations: int = 20, seed: int | np.random.SeedSequence | None = None,
                permutations: NDArray[np.integer] | None = None,
                n_components: int | None = None, block_rows: int | None = None
                ) -> NDArray[np.float64]:
    """Permutation p-values of the residual components (num.sv ``"be"``'s ``psv``).

    Parameters
    ----------
    values : array of shape (n_features, n_samples), finite
    full : array of shape (n_samples, p), full rank
    n_permutations, seed, permutations
        As for :func:`num_sv`.
    n_components : int, optional
        Components compared (R: ``min(m, n) - ceiling(trace(H))``, i.e. n - p in exact
        arithmetic, which is the default; R's rounded trace occasionally gives one fewer).

    Returns
    -------
    array of shape (n_components,)
        For component i, the fraction of permutations whose i-th share of variance is at least
        the observed one, made non-decreasing in i.
    """
    n_features, n_samples = values.shape
    basis = orthonormal_chain([full])[0]
    if n_components is None:
        n_components = min(n_features, n_samples) - basis.shape[1]
    if n_components < 1:
        return np.zeros(0)
    observed = _variance_shares(projected_residual_gram(values, basis, block_rows=block_rows),
                                n_components)
    if permutations is not None:
        n_permutations = permutations.shape[0]
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    streams = root.spawn(n_permutations)
    rows_per_block = block_rows or max(64, (1 << 22) // (8 * n_samples))

    def permuted_shares(b: int) -> NDArray[np.float64]:
        generator = np.random.default_rng(streams[b])
        gram = np.zeros((n_samples, n_samples))
        # One permutation's blocks run in order on one thread: the random stream is consumed
        # the same way whatever the block size.
        for start in range(0, n_features, rows_per_block):
            block = slice(start, min(n_features, start + rows_per_block))
            y = np.asarray(values[block], dtype=np.float64)
            residuals = y - (y @ basis) @ basis.T
            if permutations is not None:
                shuffled = np.take_along_axis(residuals, permutations[b, block], axis=1)
            else:
                shuffled = generator.permuted(residuals, axis=1)
            shuffled -= (shuffled @ basis) @ basis.T
            gram += shuffled.T @ shuffled
        return _variance_shares(gram, n_components)

    null_shares = np.array(_map_over(permuted_shares, n_permutations))
    p_values = np.mean(null_shares >= observed[None, :], axis=0)
    return np.maximum.accumulate(p_values)


def _variance_shares(gram: NDArray[np.float64], n_components: int) -> NDArray[np.float64]:
    """d_i^2 / sum(d_1..d_k^2) for the k = n_components largest singular values."""
    eigenvalues = np.linalg.eigvalsh((gram + gram.T) / 2)[::-1][:n_components]
    eigenvalues = np.maximum(eigenvalues, 0.0)
    return eigenvalues / eigenvalues.sum()


def _map_over(function: Any, count: int) -> list[Any]:
    """``function(0..count-1)`` on every core (one BLAS thread each)."""
    results: list[Any] = [None] * count

    def run(block: slice) -> None:
        for b in range(block.start, block.stop):
            results[b] = function(b)

    map_row_blocks(run, count, 1, 1)
    return results


# ----------------------------------------------------------------------------- "leek" kernel
def leek_count(values: NDArray[np.floating], full: NDArray[np.float64], *,
               block_rows: int | None = None) -> int:
    """Leek's asymptotic estimate of the number of factors (num.sv ``"leek"``).

    Parameters
    ----------
    values : array of shape (n_features, n_samples), finite, at least 10 features
    full : array of shape (n_samples, p), full rank

    Returns
    -------
    int
    """
    counts = leek_counts(values, full, block_rows=block_rows)
    return leek_selection(counts, baseline_variance=full.shape[1] / 4.0)


def leek_counts(values: NDArray[np.floating], full: NDArray[np.float64], *,
                block_rows: int | None = None) -> NDArray[np.int64]:
    """The table of eigenvalue counts behind num.sv ``"leek"`` (R's ``rhat``).

    For j = 1..10, the first j tenths of the features give ``G = Y'Y / m_j``; the eigenvalues of
    ``P G P - lambda_min(G) P`` (P the residual projection of the full model) are counted above
    ``a m_j^(-1/3) n`` for a = 0, 2/99, ..., 2.

    Parameters
    ----------
    values : array of shape (n_features, n_samples), finite, at least 10 features
    full : array of shape (n_samples, p), full rank

    Returns
    -------
    int array of shape (100, 10)
        Row 0 (a = 0) counts the positive eigenvalues of the model's complement only: the p
        eigenvalues on the model's own dimensions are exactly zero (see :func:`num_sv`).
    """
    n_features, n_samples = values.shape
    step = n_features // _LEEK_STEPS
    if step < 1:
        raise DataError(f"num_sv 'leek' needs at least {_LEEK_STEPS} features; got "
                        f"{n_features}.")
    model = orthonormal_chain([full])[0]
    n_model = model.shape[1]
    complement = np.linalg.svd(np.eye(n_samples) - model @ model.T)[0][:, :n_samples - n_model]
    empty = np.zeros((n_samples, 0))
    gram = np.zeros((n_samples, n_samples))
    counts = np.zeros((_LEEK_GRID.size, _LEEK_STEPS), dtype=np.int64)
    for j in range(1, _LEEK_STEPS + 1):
        gram = gram + projected_residual_gram(values[(j - 1) * step: j * step], empty,
                                              block_rows=block_rows)
        used = j * step
        smallest = float(np.linalg.eigvalsh(gram / used)[0])
        # On the model's complement P G P / m - sigbar P is C'GC / m - sigbar I; on the model's
        # own dimensions it is exactly zero, never above a threshold >= 0.
        within = complement.T @ gram @ complement / used
        eigenvalues = np.linalg.eigvalsh((within + within.T) / 2) - smallest
        thresholds = _LEEK_GRID * used ** (-1.0 / 3.0) * n_samples
        counts[:, j - 1] = np.sum(eigenvalues[None, :] > thresholds[:, None], axis=1)
    return counts


def leek_selection(counts: NDArray[np.integer], *, baseline_variance: float | None = None
                   ) -> int:
    """num.sv ``"leek"``'s choice of the count from the 100 x 10 table of counts.

    Parameters
    ----------
    counts : int array of shape (100, 10)
        Row i: eigenvalues above the i-th threshold (a = 0 first), column j: the first
        (j + 1) tenths of the features (R's ``rhat``).
    baseline_variance : float, optional
        Replaces the variance of row 0 (see :func:`num_sv`); ``None`` uses it as computed.

    Returns
    -------
    int
        The most frequent count of the last column over the stable range of thresholds (the
        smallest such count on ties, as R's ``modefunc``).
    """
    n_rows = counts.shape[0]
    variance = np.array([_row_variance(row) for row in counts.tolist()])
    if baseline_variance is not None:
        variance[0] = baseline_variance
    base = variance[0]
    bump = _first_true(variance > 2 * base)
    after_bump = np.concatenate([np.full(bump + 1, 1e5), variance[bump + 1:]])
    start = _first_true(after_bump < 0.5 * base)
    later = variance * np.concatenate([np.zeros(start + 1), np.ones(n_rows - start - 1)])
    finish = _first_true(later > base)
    if finish == 0:
        finish = n_rows - 1
    chosen, frequency = np.unique(counts[start:finish + 1, -1], return_counts=True)
    return int(chosen[np.argmax(frequency)])


def _row_variance(row: Sequence[int]) -> float:
    """Sample variance as R computes it (mean, deviations, squares; sums correctly rounded)."""
    mean = math.fsum(row) / len(row)
    return math.fsum((x - mean) ** 2 for x in row) / (len(row) - 1)


def _first_true(mask: NDArray[np.bool_]) -> int:
    """0-based ``which.max`` of a logical vector: the first True, or 0 when there is none."""
    return int(np.argmax(mask))
