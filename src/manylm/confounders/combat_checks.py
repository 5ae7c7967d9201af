"""What ComBat can adjust: checks of the batch layout and covariates, and features set aside.

The messages follow sva's own checks in ``ComBat`` (a covariate confounded with batch, a
single-sample batch, an unknown reference batch) but say which batch, sample or covariate is
concerned and what to do.
"""

from __future__ import annotations

import warnings

import numba
import numpy as np
from numpy.typing import NDArray

from manylm.confounders.batch_inputs import BatchLayout, FeatureMatrix
from manylm.design.estimability import estimable_columns
from manylm.errors import DesignError, InputError, ManylmWarning
from manylm.io._ids import quote_ids
from manylm.parallel import parallel_map

__all__ = ["check_design", "unadjustable_features"]


def check_design(layout: BatchLayout, covariates: NDArray[np.float64],
                 covariate_names: list[str], matrix: FeatureMatrix, *, mean_only: bool,
                 reference: int | None, method: str = "ComBat",
                 min_batch_size: int = 2) -> None:
    """Raise if the batches and covariates cannot define ComBat's model.

    ``min_batch_size`` is 2 for ComBat-seq always, and for ComBat unless ``mean_only``.
    """
    if layout.n_batches < 2:
        raise DesignError(
            f"Only one batch ({layout.levels[0]!r}) among the {layout.codes.size} samples: "
            f"there is no batch effect for {method} to remove. Check the batch column."
        )
    sizes = layout.sizes
    single = [k for k in range(layout.n_batches) if sizes[k] < min_batch_size]
    if single and not (mean_only and method == "ComBat"):
        names = ", ".join(
            f"{layout.levels[k]!r} (sample {matrix.sample_label(int(layout.columns(k)[0]))})"
            for k in single)
        if method == "ComBat":
            advice = ("Use mean-only adjustment (mean_only=True, --mean-only), which sva "
                      "switches to in this case, merge it with another batch or remove it.")
        else:
            advice = (f"{method} needs 2 samples per batch: merge it with another batch or "
                      "remove it.")
        raise InputError(
            f"Batch {names} has a single sample: {method} cannot estimate a batch variance "
            f"from it. {advice}"
        )
    if reference is not None and sizes[reference] < 2:
        raise InputError(
            f"The reference batch {layout.levels[reference]!r} has a single sample; the pooled "
            "variance is estimated from the reference batch, so it needs at least 2. Choose "
            "another reference batch."
        )
    indicators = np.zeros((layout.codes.size, layout.n_batches))
    indicators[np.arange(layout.codes.size), layout.codes] = 1.0
    design = np.hstack([indicators, covariates])
    if design.shape[1] >= layout.codes.size:
        raise DesignError(
            f"{layout.n_batches} batches and {covariates.shape[1]} covariate column(s) leave no "
            f"residual degrees of freedom with {layout.codes.size} samples; protect fewer "
            "covariates."
        )
    if covariates.shape[1] == 0:
        return
    alone = estimable_columns(covariates)
    if not alone.all():
        dependent = [n for n, ok in zip(covariate_names, alone, strict=True) if not ok]
        raise DesignError(
            f"The covariates to protect are confounded with each other: {quote_ids(dependent)} "
            "is a combination of the others. Remove one or more of them."
        )
    together = estimable_columns(design)[layout.n_batches:]
    if not together.all():
        confounded = [n for n, ok in zip(covariate_names, together, strict=True) if not ok]
        raise DesignError(
            f"The covariate(s) to protect are confounded with batch: {quote_ids(confounded)} "
            "is a combination of the batch indicators (and the other covariates), so "
            f"{method} cannot separate the batch effect from it. Remove the confounded "
            "covariate(s) from the covariates to protect, or check the batch column."
        )


def unadjustable_features(matrix: FeatureMatrix, layout: BatchLayout,
                          batch_columns: list[NDArray[np.intp]], *,
                          mean_only: bool) -> NDArray[np.bool_]:
    """Rows ComBat leaves unchanged, with a :class:`ManylmWarning` naming them.

    As sva: a feature constant within a batch of two or more samples. Beyond sva (which fails
    or returns NaN there): a feature with no observed value at all, or whose missing values
    leave a batch with fewer observations than its estimates need (2, or 1 for mean-only).
    """
    values = matrix.values
    order = np.concatenate(batch_columns)
    bounds = np.cumsum([0] + [c.size for c in batch_columns])
    observed = np.empty((values.shape[0], len(batch_columns)), dtype=np.int64)
    flat = np.empty((values.shape[0], len(batch_columns)), dtype=np.bool_)
    step = max(1, 2**20 // values.shape[1])
    parallel_map(lambda start: _batch_spread(values, order, bounds, start,
                                             min(start + step, values.shape[0]), observed, flat),
                 range(0, values.shape[0], step))
    sizes = np.array([c.size for c in batch_columns])
    flat &= (observed >= 2) & (sizes >= 2)[None, :]
    constant = flat.any(axis=1)
    needed = 1 if mean_only else 2
    sparse = (observed < needed).any(axis=1)
    empty = observed.sum(axis=1) == 0
    sparse &= ~empty & ~constant
    if constant.any():
        rows = np.flatnonzero(constant)
        examples = [f"{matrix.feature_ids[r]} (batch {layout.levels[int(np.argmax(flat[r]))]})"
                    for r in rows[:10]]
        warnings.warn(
            f"{rows.size} feature(s) are constant within a batch and were left unadjusted, as "
            f"sva's ComBat does: {quote_ids(examples)}.", ManylmWarning, stacklevel=4)
    if empty.any():
        warnings.warn(
            f"{int(empty.sum())} feature(s) have no observed value and were left as missing: "
            f"{quote_ids([matrix.feature_ids[r] for r in np.flatnonzero(empty)])}.",
            ManylmWarning, stacklevel=4)
    if sparse.any():
        warnings.warn(
            f"{int(sparse.sum())} feature(s) have fewer than {needed} observed value(s) in some "
            "batch, too few to estimate its batch effect, and were left unadjusted: "
            f"{quote_ids([matrix.feature_ids[r] for r in np.flatnonzero(sparse)])}.",
            ManylmWarning, stacklevel=4)
    return constant | empty | sparse


@numba.njit(cache=True, nogil=True)
def _batch_spread(values, order, bounds, start, stop, observed, flat):  # pragma: no cover
    """For rows start..stop and each batch (columns order[bounds[k]:bounds[k+1]]): how many
    values are observed, and whether the observed ones are all equal."""
    for row in range(start, stop):
        for k in range(bounds.size - 1):
            count = 0
            low = np.inf
            high = -np.inf
            for position in range(bounds[k], bounds[k + 1]):
                value = values[row, order[position]]
                if value == value:  # not NaN
                    count += 1
                    low = min(low, value)
                    high = max(high, value)
            observed[row, k] = count
            flat[row, k] = count > 0 and low == high
