"""Surrogate variable analysis: ``sva`` and ``svaseq`` (Bioconductor sva 3.46).

Surrogate variables (Leek & Storey 2007, PLoS Genetics 3:e161) are sample-level vectors that
capture the unmodelled structure of the data (batches, cell mixtures, unrecorded conditions) left
after the variables of interest; adding them to the design as adjustment variables protects the
tests of those variables. ``svaseq`` (Leek 2014, NAR 42:e161) applies the same algorithms to
``log(counts + constant)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.confounders.nested_models import (
    DesignSpec,
    feature_matrix,
    nested_models,
    resolve_design,
)
from manylm.confounders.num_sv import NUM_SV_METHODS, be_count, leek_count
from manylm.confounders.sva_irw import irw_surrogates
from manylm.confounders.sva_two_step import supervised_surrogates, two_step_surrogates
from manylm.design import Design
from manylm.errors import DataError, InputError, ManylmWarning

__all__ = ["SVA_METHODS", "SurrogateVariables", "sva", "svaseq"]

SVA_METHODS = ("irw", "two-step", "supervised")


@dataclass(frozen=True)
class SurrogateVariables:
    """Estimated surrogate variables and the per-feature probabilities behind them.

    Attributes
    ----------
    surrogates : DataFrame of shape (n_samples, n_sv)
        Indexed by sample ID, columns ``sv1 .. svK`` (orthonormal columns; a sign and, for
        several SVs, a rotation are arbitrary, as in R).
    pprob_gam : Series of length n_features
        Probability that each feature is affected by the surrogate variables (irw), the 0/1
        indicator of the features that carried a vector (two-step) or the control
        probabilities (supervised). NaN for features left out of the estimation.
    pprob_b : Series of length n_features, or None
        Probability that each feature is associated with the variables of interest (irw only).
    n_sv : int
    method : str
        "irw", "two-step" or "supervised".
    n_sv_method : str
        "given", or the num_sv method ("be", "leek") that chose ``n_sv``.
    excluded_features : list of str
        Features left out because they are constant or have missing or infinite values.
    """

    surrogates: pd.DataFrame
    pprob_gam: pd.Series
    pprob_b: pd.Series | None
    n_sv: int
    method: str
    n_sv_method: str
    excluded_features: list[str]


def sva(
    data: Any,
    full: DesignSpec,
    null: DesignSpec | None = None,
    *,
    samples: pd.DataFrame | None = None,
    reference: Mapping[str, object] | None = None,
    n_sv: int | str = "auto",
    method: str = "irw",
    controls: Any = None,
    iterations: int = 5,
    num_sv_method: str = "be",
    n_permutations: int = 20,
    seed: int | np.random.SeedSequence | None = None,
    block_rows: int | None = None,
) -> SurrogateVariables:
    """Estimate surrogate variables (R's ``sva::sva``).

    Parameters
    ----------
    data : DataFrame or array of shape (n_features, n_samples)
        Log-scale expression (or any roughly normal data). Constant features and features with
        a missing or infinite value are left out, with a warning.
    full : Design, formula, DataFrame or array
        The full model: variables of interest and adjustment variables (``mod``).
    null : Design, formula, DataFrame or array, optional
        The null model: adjustment variables only (``mod0``; default the intercept). Used by
        "irw" only.
    samples, reference
        Sample sheet and reference levels for formula designs.
    n_sv : int or "auto"
        Number of surrogate variables; "auto" estimates it with :func:`manylm.confounders.num_sv`
        (``num_sv_method``, ``n_permutations``, ``seed``).
    method : {"irw", "two-step", "supervised"}
        sva's iteratively re-weighted algorithm (default), the two-step algorithm, or the
        supervised one (needs ``controls``).
    controls : Series (by feature ID) or array of shape (n_features,), optional
        Probability that each feature is a control, in [0, 1]; giving it selects "supervised".
    iterations : int
        Iterations of "irw" (R's ``B = 5``).
    num_sv_method, n_permutations, seed
        How "auto" chooses the number (R: ``numSVmethod = "be"``, ``B = 20``).
    block_rows : int, optional
        Features per block (default: a few megabytes).

    Returns
    -------
    SurrogateVariables

    Raises
    ------
    DesignError
        Rank-deficient or non-nested models (naming the columns).
    InputError
        ``n_sv`` beyond what the residual degrees of freedom allow (the message gives the
        maximum), an unknown method, bad controls.
    """
    prepared = _prepare(data, full, null, samples, reference, method, controls, num_sv_method)
    return _estimate(prepared, n_sv, iterations, n_permutations, seed, block_rows)


def svaseq(
    counts: Any,
    full: DesignSpec,
    null: DesignSpec | None = None,
    *,
    constant: float = 1.0,
    **options: Any,
) -> SurrogateVariables:
    """Surrogate variables of sequencing counts (R's ``sva::svaseq``): ``sva`` on log(counts + c).

    Parameters
    ----------
    counts : DataFrame or array of shape (n_features, n_samples)
        Non-negative counts (or normalised counts). Features with all counts equal (all zero,
        typically) are constant after the log and are left out with a warning.
    full, null
        As for :func:`sva`.
    constant : float
        Added before the natural log (R's ``constant = 1``).
    **options
        Any option of :func:`sva`.

    Returns
    -------
    SurrogateVariables
    """
    if not constant > 0:
        raise InputError(f"'constant' must be positive; got {constant}.")
    if isinstance(counts, pd.DataFrame):
        negative = (counts < 0).any(axis=1)
        if negative.any():
            raise DataError(
                f"svaseq needs counts of zero or more; feature(s) "
                f"{', '.join(map(str, counts.index[negative.to_numpy()][:5]))} have negative "
                "values.")
        log_values: Any = np.log(counts.astype(np.float64) + constant)
    else:
        array = np.asarray(counts, dtype=np.float64)
        if np.any(array < 0):
            rows = np.flatnonzero((array < 0).any(axis=1))
            raise DataError(f"svaseq needs counts of zero or more; rows {rows[:5].tolist()} "
                            "have negative values.")
        log_values = np.log(array + constant)
    return sva(log_values, full, null, **options)


@dataclass(frozen=True)
class _Prepared:
    values: NDArray[np.floating]
    feature_ids: pd.Index
    kept: NDArray[np.bool_]
    full: Design
    null: Design | None
    method: str
    controls: NDArray[np.float64] | None
    num_sv_method: str


def _prepare(data: Any, full: DesignSpec, null: DesignSpec | None,
             samples: pd.DataFrame | None, reference: Mapping[str, object] | None,
             method: str, controls: Any, num_sv_method: str) -> _Prepared:
    if method not in SVA_METHODS:
        raise InputError(f"The 'method' parameter must be one of {SVA_METHODS}; got {method!r}.")
    if num_sv_method not in NUM_SV_METHODS:
        raise InputError(f"The 'num_sv_method' parameter must be one of {NUM_SV_METHODS}; got "
                         f"{num_sv_method!r}.")
    if controls is not None and method != "supervised":
        warnings.warn("Controls given: supervised sva is performed (as R's sva does).",
                      ManylmWarning, stacklevel=3)
        method = "supervised"
    if method == "supervised" and controls is None:
        raise InputError("Supervised sva needs 'controls': the probability that each feature "
                         "is a control (unaffected by the variables of interest).")
    null_design: Design | None = None
    if method == "irw":
        models = nested_models(full, null, samples=samples, reference=reference)
        full_design, null_design = models.full, models.null
    else:
        full_design = resolve_design(full, samples=samples, reference=reference)
    values, feature_ids = feature_matrix(data, full_design.sample_ids)
    control_values = None if controls is None else _controls(controls, feature_ids)
    kept = _informative_rows(values, feature_ids)
    if not kept.all():
        values = values[kept]
        if control_values is not None:
            control_values = control_values[kept]
    return _Prepared(values, feature_ids, kept, full_design, null_design, method,
                     control_values, num_sv_method)


def _estimate(prepared: _Prepared, n_sv: int | str, iterations: int, n_permutations: int,
              seed: int | np.random.SeedSequence | None, block_rows: int | None
              ) -> SurrogateVariables:
    values, full = prepared.values, prepared.full.matrix
    n_samples, p_full = full.shape
    limit = _max_surrogates(prepared.method, n_samples, p_full)
    if isinstance(n_sv, str):
        if n_sv != "auto":
            raise InputError(f"'n_sv' must be a non-negative integer or 'auto'; got {n_sv!r}.")
        if prepared.num_sv_method == "leek":
            k = leek_count(values, full, block_rows=block_rows)
        else:
            k = be_count(values, full, n_permutations=n_permutations, seed=seed,
                         block_rows=block_rows)
        chosen_by = prepared.num_sv_method
        if k > limit:
            warnings.warn(f"num_sv ({chosen_by}) found {k} surrogate variables; {prepared.method} "
                          f"can estimate at most {limit} here, so {limit} are used.",
                          ManylmWarning, stacklevel=3)
            k = limit
    else:
        if isinstance(n_sv, bool) or not isinstance(n_sv, (int, np.integer)) or n_sv < 0:
            raise InputError(f"'n_sv' must be a non-negative integer or 'auto'; got {n_sv!r}.")
        k, chosen_by = int(n_sv), "given"
        if k > limit:
            raise InputError(
                f"n_sv = {k} is more than the data allow: with {n_samples} samples and "
                f"{p_full} column(s) in the full model, {prepared.method} can estimate at most "
                f"{limit} surrogate variable(s).")
    pprob_b: NDArray[np.float64] | None = None
    if k == 0:
        surrogates = np.zeros((n_samples, 0))
        pprob_gam = (np.zeros(values.shape[0]) if prepared.controls is None
                     else prepared.controls)
    elif prepared.method == "irw":
        assert prepared.null is not None
        surrogates, pprob_gam, pprob_b = irw_surrogates(
            values, full, prepared.null.matrix, k, iterations=iterations, block_rows=block_rows)
    elif prepared.method == "two-step":
        surrogates, pprob_gam = two_step_surrogates(values, full, k, block_rows=block_rows)
    else:
        assert prepared.controls is not None
        surrogates = supervised_surrogates(values, prepared.controls, k, block_rows=block_rows)
        pprob_gam = prepared.controls
    names = [f"sv{i + 1}" for i in range(surrogates.shape[1])]
    frame = pd.DataFrame(surrogates, index=pd.Index(prepared.full.sample_ids, name="sample"),
                         columns=names)
    return SurrogateVariables(
        surrogates=frame,
        pprob_gam=_per_feature(pprob_gam, prepared, "pprob_gam"),
        pprob_b=None if pprob_b is None else _per_feature(pprob_b, prepared, "pprob_b"),
        n_sv=surrogates.shape[1],
        method=prepared.method,
        n_sv_method=chosen_by,
        excluded_features=[str(f) for f in prepared.feature_ids[~prepared.kept]],
    )


def _max_surrogates(method: str, n_samples: int, p_full: int) -> int:
    """The most surrogate variables each algorithm can estimate."""
    if method == "irw":  # the F test of full + SVs needs a residual degree of freedom
        return max(n_samples - p_full - 1, 0)
    if method == "two-step":  # residual singular vectors with non-zero singular value
        return max(n_samples - p_full, 0)
    return max(n_samples - 1, 0)  # row-centred data have rank n - 1


def _informative_rows(values: NDArray[np.floating], feature_ids: pd.Index) -> NDArray[np.bool_]:
    """Rows with finite, non-constant values; warns naming those left out."""
    finite = np.isfinite(values).all(axis=1)
    with np.errstate(invalid="ignore"):
        constant = finite & (np.nanmax(values, axis=1) == np.nanmin(values, axis=1))
    for mask, why in ((~finite, "missing or infinite values"), (constant, "a constant value")):
        if mask.any():
            examples = ", ".join(map(str, feature_ids[mask][:5]))
            warnings.warn(
                f"{int(mask.sum())} feature(s) with {why} were left out of the surrogate "
                f"variable estimation (e.g. {examples}); sva cannot use them.",
                ManylmWarning, stacklevel=4)
    kept = finite & ~constant
    if kept.sum() < 2:
        raise DataError("Fewer than two usable features (non-constant, without missing "
                        "values) are left for surrogate variable analysis.")
    return kept


def _controls(controls: Any, feature_ids: pd.Index) -> NDArray[np.float64]:
    if isinstance(controls, pd.Series):
        series = controls.set_axis(controls.index.astype(str))
        lacking = pd.Index(feature_ids.astype(str)).difference(series.index)
        if len(lacking):
            raise InputError(f"No control probability for feature(s) "
                             f"{', '.join(lacking[:5])} ({len(lacking)} in all).")
        values = series.loc[feature_ids.astype(str)].to_numpy(dtype=np.float64)
    else:
        values = np.asarray(controls, dtype=np.float64).ravel()
        if values.shape[0] != len(feature_ids):
            raise InputError(f"'controls' has {values.shape[0]} values for "
                             f"{len(feature_ids)} features; give one per feature.")
    bad = ~np.isfinite(values) | (values < 0) | (values > 1)
    if bad.any():
        where = feature_ids[bad][:5]
        raise InputError(f"Control probabilities must be between 0 and 1; feature(s) "
                         f"{', '.join(map(str, where))} have {values[bad][:5].tolist()}.")
    return values


def _per_feature(values: NDArray[np.float64], prepared: _Prepared, name: str) -> pd.Series:
    out = np.full(prepared.kept.shape[0], np.nan)
    out[prepared.kept] = values
    return pd.Series(out, index=prepared.feature_ids, name=name)
