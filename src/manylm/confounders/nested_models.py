"""A full and a null (nested) model on the same samples, and their F test for every feature.

sva compares two linear models on every feature: the full model (the variables of interest and
the adjustment variables) and the null model (the adjustment variables only). Its ``f.pvalue``
is the ordinary F test of the null against the full model (Leek & Storey 2007; any regression
textbook, e.g. Seber & Lee 2003, sec. 4.3). Here the null is given as its own formula (or
matrix), or as the terms of the full model to test, and is checked to be nested in the full one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import special

from manylm.design import Design, design_matrix, resolve_tests
from manylm.errors import DataError, DesignError, InputError

__all__ = [
    "NestedModels",
    "f_statistics",
    "feature_matrix",
    "nested_f_test",
    "nested_models",
    "resolve_design",
]

DesignSpec = Design | str | pd.DataFrame | NDArray[np.float64]

#: A null column is "in" the full model when what is left of it after projecting it on the full
#: model's columns is below this fraction of its norm (the rank tolerance of limma / lm.fit).
NESTED_TOLERANCE = 1e-7


@dataclass(frozen=True)
class NestedModels:
    """A full model and a null model nested in it, on the same samples.

    Attributes
    ----------
    full, null : Design
        Both with the same ``sample_ids``, in the same order.
    """

    full: Design
    null: Design

    @property
    def sample_ids(self) -> list[str]:
        return list(self.full.sample_ids)

    @property
    def df_tested(self) -> int:
        """Dimensions the full model adds to the null (the F test's numerator df)."""
        return self.full.rank - self.null.rank


def nested_models(
    full: DesignSpec,
    null: DesignSpec | None = None,
    *,
    test: str | Sequence[str] | None = None,
    samples: pd.DataFrame | None = None,
    reference: Mapping[str, object] | None = None,
) -> NestedModels:
    """The full and the null model, checked to be nested and full-rank.

    Parameters
    ----------
    full : Design, formula, DataFrame or array
        The full model (``mod`` in sva); a formula needs ``samples``.
    null : Design, formula, DataFrame or array, optional
        The null model (``mod0``). Give this or ``test``; with neither, the null model is the
        intercept alone (sva's default ``mod0 = mod[, 1]``).
    test : str or sequence of str, optional
        Coefficients or terms of the full model to test: the null model is the full one
        without them.
    samples : DataFrame, optional
        Sample sheet (indexed by sample ID) for formula designs.
    reference : mapping, optional
        Reference level per factor for formula designs.

    Returns
    -------
    NestedModels

    Raises
    ------
    DesignError
        If a design is rank-deficient, the null model has a column the full model cannot
        reproduce (named), or the null model is the full model.
    """
    if null is not None and test is not None:
        raise InputError("Give the null model or the terms to test, not both.")
    full_design = resolve_design(full, samples=samples, reference=reference)
    if test is not None:
        requested = [test] if isinstance(test, str) else list(test)
        tested = resolve_tests(requested, full_design.coefficient_names, full_design.terms)
        kept = [j for j, name in enumerate(full_design.coefficient_names) if name not in tested]
        if not kept:
            raise DesignError(
                f"Testing {', '.join(requested)} leaves no column in the null model; keep at "
                "least the intercept (test the other terms only).")
        null_design = Design.from_matrix(
            full_design.matrix[:, kept],
            coefficient_names=[full_design.coefficient_names[j] for j in kept],
            sample_ids=full_design.sample_ids)
    elif null is None:
        null_design = Design.from_matrix(np.ones((full_design.n_samples, 1)),
                                         coefficient_names=["Intercept"],
                                         sample_ids=full_design.sample_ids)
    else:
        null_design = resolve_design(null, samples=samples, reference=reference, role="null",
                                     sample_ids=full_design.sample_ids)
        if list(null_design.sample_ids) != list(full_design.sample_ids):
            # The null formula dropped more samples (a missing covariate): use the common ones.
            full_design = resolve_design(full, samples=samples, reference=reference,
                                         sample_ids=null_design.sample_ids)
    _check_full_rank(null_design, "null")
    check_nested(full_design, null_design)
    return NestedModels(full_design, null_design)


def check_nested(full: Design, null: Design) -> None:
    """Raise DesignError unless every null column is a combination of the full columns."""
    q, _ = np.linalg.qr(full.matrix)
    leftover = null.matrix - q @ (q.T @ null.matrix)
    size = np.maximum(np.linalg.norm(null.matrix, axis=0), np.finfo(float).tiny)
    outside = np.linalg.norm(leftover, axis=0) > NESTED_TOLERANCE * size
    if outside.any():
        names = [n for n, o in zip(null.coefficient_names, outside, strict=True) if o]
        raise DesignError(
            f"The null model is not nested in the full model: column(s) {', '.join(names)} of "
            "the null design are not combinations of the full design's columns. Every term of "
            "the null model must also be in the full model.")
    if null.rank >= full.rank:
        raise DesignError(
            "The null model spans the full model: there is nothing to test. The full model "
            "needs at least one term the null model lacks.")


def nested_f_test(
    data: Any,
    full: DesignSpec,
    null: DesignSpec | None = None,
    *,
    test: str | Sequence[str] | None = None,
    samples: pd.DataFrame | None = None,
    reference: Mapping[str, object] | None = None,
    weights: Any = None,
) -> pd.DataFrame:
    """The F test of the null against the full model for every feature (sva's ``f.pvalue``).

    Both models are fitted with :func:`manylm.lm_fit` (so features with missing values use their
    observed samples, and ``weights`` give weighted least squares); then
    ``F = ((RSS0 - RSS1) / (df0 - df1)) / (RSS1 / df1)`` with the residual degrees of freedom
    ``df1`` (full) and ``df0`` (null) of each feature.

    Parameters
    ----------
    data : DataFrame or array of shape (n_features, n_samples)
    full, null, test, samples, reference
        As for :func:`nested_models`; one of ``null`` and ``test`` is required.
    weights : array or DataFrame, optional
        Observation weights, as for :func:`manylm.lm_fit`.

    Returns
    -------
    DataFrame indexed by feature
        Columns ``F``, ``df1`` (numerator), ``df2`` (denominator) and ``p_value`` (upper tail,
        computed directly rather than as R's ``1 - pf(...)``, so small p-values keep their
        digits).
    """
    from manylm.fit import lm_fit

    if null is None and test is None:
        raise InputError("Give the null model (null=) or the terms to test (test=).")
    models = nested_models(full, null, test=test, samples=samples, reference=reference)
    fit_full = lm_fit(data, models.full, weights=weights)
    fit_null = lm_fit(data, models.null, weights=weights)
    rss_full = fit_full.residual_variance * fit_full.df_residual
    rss_null = fit_null.residual_variance * fit_null.df_residual
    statistic, df1, df2, p_value = f_statistics(rss_full, fit_full.df_residual, rss_null,
                                                fit_null.df_residual)
    return pd.DataFrame({"F": statistic, "df1": df1, "df2": df2, "p_value": p_value},
                        index=fit_full.feature_ids)


def f_statistics(
    rss_full: NDArray[np.floating],
    df_full: NDArray[np.floating] | float,
    rss_null: NDArray[np.floating],
    df_null: NDArray[np.floating] | float,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
           NDArray[np.float64]]:
    """F statistics and upper-tail p-values of nested models from residual sums of squares.

    Parameters
    ----------
    rss_full, rss_null : arrays of shape (n_features,)
    df_full, df_null : arrays of shape (n_features,) or scalars
        Residual degrees of freedom of the full and the null model.

    Returns
    -------
    F, df1, df2, p_value : arrays of shape (n_features,)
        NaN where the test does not exist (no residual df, or a perfect fit of both models).
    """
    rss_full = np.asarray(rss_full, dtype=np.float64)
    df2 = np.broadcast_to(np.asarray(df_full, dtype=np.float64), rss_full.shape)
    df1 = np.broadcast_to(np.asarray(df_null, dtype=np.float64), rss_full.shape) - df2
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = ((np.asarray(rss_null) - rss_full) / df1) / (rss_full / df2)
    statistic = np.where((df1 > 0) & (df2 > 0), np.maximum(statistic, 0.0), np.nan)
    p_value = _f_upper_tail(np.where(df1 > 0, df1, 1.0), np.where(df2 > 0, df2, 1.0),
                            statistic)
    return statistic, df1.copy(), df2.copy(), np.where(np.isnan(statistic), np.nan, p_value)


def _f_upper_tail(df1: NDArray[np.float64], df2: NDArray[np.float64],
                  statistic: NDArray[np.float64]) -> NDArray[np.float64]:
    """``fdtrc`` split over the cores for long vectors (the ufunc releases the GIL)."""
    from manylm.parallel import cpu_count, parallel_map

    out = np.empty(statistic.shape)
    bounds = np.linspace(0, statistic.size, max(1, min(cpu_count(), statistic.size // 20_000))
                         + 1).astype(int)

    def run(i: int) -> None:
        part = slice(bounds[i], bounds[i + 1])
        out[part] = special.fdtrc(df1[part], df2[part], statistic[part])

    parallel_map(run, range(len(bounds) - 1))
    return out


def feature_matrix(data: Any, sample_ids: Sequence[str], *, label: str = "the data"
                   ) -> tuple[NDArray[np.floating], pd.Index]:
    """The features x samples values in the design's sample order, and the feature IDs.

    Parameters
    ----------
    data : DataFrame (columns = sample IDs) or array of shape (n_features, n_samples)
        An array must already have its columns in the design's sample order.
    sample_ids : sequence of str
        The design's samples.

    Returns
    -------
    values : array of shape (n_features, n_samples), float32 or float64 (no copy if possible)
    feature_ids : Index
    """
    if isinstance(data, pd.DataFrame):
        columns = [str(c) for c in data.columns]
        position = {c: i for i, c in enumerate(columns)}
        missing = [s for s in sample_ids if s not in position]
        if missing:
            raise DesignError(
                f"{len(missing)} sample(s) of the design are not columns of {label}: "
                f"{', '.join(missing[:10])}. Check that the sample IDs of the data and of the "
                "sample sheet match.")
        non_numeric = [c for c, kind in data.dtypes.items()
                       if not pd.api.types.is_numeric_dtype(kind)]
        if non_numeric:
            raise DataError(
                f"{label} has non-numeric columns: {', '.join(map(str, non_numeric[:5]))}. Put "
                "feature IDs in the index and keep only numbers.")
        selected = [position[s] for s in sample_ids]
        values = data.to_numpy()
        if selected != list(range(len(columns))):
            values = values[:, selected]
        feature_ids = pd.Index(data.index.astype(str), name="feature")
    else:
        values = np.asarray(data)
        if values.ndim != 2:
            raise DataError(f"{label} must be 2-D (features x samples); got shape "
                            f"{values.shape}.")
        if values.shape[1] != len(sample_ids):
            raise DesignError(
                f"{label} has {values.shape[1]} columns but the design has {len(sample_ids)} "
                "samples; they must match, in the same order.")
        if values.dtype.kind not in "fiub":
            raise DataError(f"{label} must be numeric; got values of type {values.dtype}.")
        feature_ids = pd.RangeIndex(values.shape[0], name="feature")
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    if values.shape[0] == 0:
        raise DataError(f"{label} has no features (rows).")
    if not pd.Index(feature_ids).is_unique:
        duplicated = pd.Index(feature_ids)[pd.Index(feature_ids).duplicated()]
        raise DataError(f"Duplicate feature IDs in {label}: "
                        f"{', '.join(map(str, duplicated[:5]))}; every feature needs its own ID.")
    return values, pd.Index(feature_ids)


def resolve_design(spec: DesignSpec, *, samples: pd.DataFrame | None = None,
                   reference: Mapping[str, object] | None = None, role: str = "full",
                   sample_ids: Sequence[str] | None = None) -> Design:
    """A full-rank :class:`~manylm.design.Design` from a Design, formula, DataFrame or array.

    Parameters
    ----------
    spec : Design, formula, DataFrame or array of shape (n_samples, p)
    samples : DataFrame, optional
        Sample sheet indexed by sample ID (required for a formula).
    reference : mapping, optional
        Reference level per factor (formula only).
    role : str
        How to name the model in messages ("full", "null").
    sample_ids : sequence of str, optional
        Restrict (or, for an unlabelled matrix, label) the design to these samples, in order.

    Raises
    ------
    DesignError
        If the design is rank-deficient (naming the redundant columns), or its samples do not
        match ``sample_ids``.
    """
    design = _design(spec, samples, reference, role, sample_ids)
    _check_full_rank(design, role)
    return design


def _design(spec: DesignSpec, samples: pd.DataFrame | None,
            reference: Mapping[str, object] | None, role: str,
            sample_ids: Sequence[str] | None) -> Design:
    if isinstance(spec, Design):
        design = spec
    elif isinstance(spec, str):
        if samples is None:
            raise DesignError(f"The {role} model is a formula: pass the sample sheet "
                              "(samples=DataFrame indexed by sample ID).")
        sheet = samples.copy()
        sheet.index = sheet.index.astype(str)
        if sample_ids is not None:
            sheet = sheet.loc[list(sample_ids)]
        return design_matrix(spec, sheet, reference=reference)
    else:
        design = Design.from_matrix(spec, sample_ids=None if isinstance(spec, pd.DataFrame)
                                    else sample_ids)
    if sample_ids is not None and list(design.sample_ids) != list(sample_ids):
        if isinstance(spec, (Design, pd.DataFrame)) and set(sample_ids) <= set(
                design.sample_ids):
            rows = [design.sample_ids.index(s) for s in sample_ids]
            return Design.from_matrix(design.matrix[rows],
                                      coefficient_names=design.coefficient_names,
                                      sample_ids=list(sample_ids))
        if design.n_samples != len(sample_ids):
            raise DesignError(
                f"The {role} design has {design.n_samples} rows but the full design has "
                f"{len(sample_ids)} samples; both models need the same samples.")
        design = Design.from_matrix(design.matrix, coefficient_names=design.coefficient_names,
                                    sample_ids=list(sample_ids))
    return design


def _check_full_rank(design: Design, role: str) -> None:
    if design.non_estimable:
        raise DesignError(
            f"The {role} model is rank-deficient: {', '.join(design.non_estimable)} "
            "depend(s) on earlier columns. Remove the redundant terms (sva needs full-rank "
            "models).")
