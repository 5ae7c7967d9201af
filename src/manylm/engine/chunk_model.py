"""The chunk functions of the two-pass engine, shared by the streaming engine and Dask.

Map 1 fits a chunk of features (``lm_fit`` and ``contrasts_fit``, the in-memory functions, on
the chunk's rows) and keeps a few numbers per feature. After the reduce has estimated the prior
from all features, map 2 moderates a chunk given the prior (a :class:`ModeratedFit` over the
chunk with the prior's slices) and computes its table rows with ``top_table``'s own column
functions (unsorted and unadjusted: sorting and adjusting need every p-value). Every statistic
is per-feature arithmetic given the prior, so a chunk's rows are those of the in-memory table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from numpy.typing import NDArray

from manylm.design.matrix import Design
from manylm.errors import InputError, ManylmError
from manylm.fit.contrasts import contrasts_fit
from manylm.fit.lmfit import lm_fit
from manylm.fit.result import LinearModelFit
from manylm.inference.tables import _f_columns, _t_columns_with_interval, top_table
from manylm.io.feature_blocks import FeatureIds
from manylm.moderate.moderated_fit import ModeratedFit

__all__ = ["FIT_FIELDS", "ChunkModel", "fit_chunk", "fit_fields", "moderated_chunk",
           "table_chunk"]

#: Per-feature results of map 1, by name: (width is the number of coefficients) or 1.
FIT_FIELDS = ("coefficients", "stdev_unscaled", "residual_variance", "df_residual", "mean")


@dataclass(frozen=True)
class ChunkModel:
    """Everything a chunk function needs: the model, what to test, and how.

    Parameters
    ----------
    design : Design
    coef : list of str or int, optional
        What the table tests, as for :func:`manylm.top_table` (coefficient, contrast or term
        names; one gives a t table, several an F table; default all coefficients).
    sample_weights : array of shape (n_samples,), optional
        One weight per sample of the design (multiplied into a weights matrix when both).
    contrasts : list of str or DataFrame, optional
        Contrasts to form after the fit (``contrasts_fit``), e.g. ``["CvB = a - b"]``, or a
        coefficients x contrasts matrix.
    moderate : bool
        False gives ordinary t and F statistics.
    trend, robust, treat_lfc, proportion, stdev_coef_lim, winsor_tail_p :
        As for :func:`manylm.ebayes` and :func:`manylm.treat`.
    confint : float
        Level of the confidence interval in the t table.
    transform : {"beta_to_m"}, optional
        Applied to each chunk before the fit (methylation beta values to M-values).
    label : str
        The data, for messages.
    """

    design: Design
    coef: list[Any] | None = None
    sample_weights: NDArray[np.float64] | None = None
    contrasts: list[str] | pd.DataFrame | None = None
    moderate: bool = True
    trend: bool = False
    robust: bool = False
    treat_lfc: float | None = None
    proportion: float = 0.01
    stdev_coef_lim: tuple[float, float] = (0.1, 4.0)
    winsor_tail_p: tuple[float, float] = (0.05, 0.1)
    confint: float = 0.95
    transform: str | None = None
    label: str = "the data matrix"
    _template: list[LinearModelFit] = field(default_factory=list, init=False, repr=False,
                                            compare=False)

    @property
    def template(self) -> LinearModelFit:
        """A one-feature fit holding everything that is not per feature (names, covariance)."""
        if not self._template:
            zeros = pd.DataFrame(np.zeros((1, self.design.n_samples)), index=["template"],
                                 columns=list(self.design.sample_ids))
            fit = lm_fit(zeros, self.design, weights=self.sample_weights, n_jobs=1)
            if self.contrasts is not None:
                fit = contrasts_fit(fit, self.contrasts)
            self._template.append(fit)
        return self._template[0]

    @property
    def n_coefficients(self) -> int:
        """Coefficients kept per feature between the passes: the tested ones."""
        return len(self.tested())

    @property
    def tested_template(self) -> LinearModelFit:
        """The template restricted to the tested coefficients (all the table needs).

        Chunk fits keep only these columns, so the summaries stored between the passes hold
        two numbers per tested coefficient, not per coefficient of the design.
        """
        if len(self._template) < 2:
            fit, tested = self.template, self.tested()
            self._template.append(replace(
                fit, coefficients=fit.coefficients[:, tested],
                stdev_unscaled=fit.stdev_unscaled[:, tested],
                cov_unscaled=fit.cov_unscaled[np.ix_(tested, tested)],
                coefficient_names=[fit.coefficient_names[j] for j in tested],
                terms={fit.coefficient_names[j]: [fit.coefficient_names[j]] for j in tested}))
        return self._template[1]

    def tested(self) -> list[int]:
        """Positions of the tested coefficients, resolved as :func:`manylm.top_table` does."""
        fit = self.template
        if self.coef is None:
            return list(range(len(fit.coefficient_names)))
        items = self.coef if isinstance(self.coef, (list, tuple)) else [self.coef]
        positions: list[int] = []
        for item in items:
            found = [int(item)] if isinstance(item, (int, np.integer)) else \
                fit.coefficient_index(str(item))
            positions.extend(p for p in found if p not in positions)
        return positions

    @property
    def has_lods(self) -> bool:
        """Whether the table has B-statistics (a moderated t table, not treat).

        Its coefficient is then position 0 of the chunks' fits (:attr:`tested_template`).
        """
        return self.moderate and self.treat_lfc is None and len(self.tested()) == 1

    def table_columns(self) -> list[str]:
        """The table's columns (after the feature column), validating the options.

        ``top_table`` on the whole one-feature template: the names, the estimability and the
        options are checked as the in-memory table checks them.
        """
        one = np.ones(1)
        fit = self.template
        result = ModeratedFit(fit=fit, df_total=one * 3, s2_post=one, s2_prior=1.0,
                              df_prior=3.0 if self.moderate else 0.0,
                              treat_lfc=None if self.treat_lfc is None else abs(self.treat_lfc),
                              moderated=self.moderate, proportion=self.proportion,
                              stdev_coef_lim=self.stdev_coef_lim)
        return list(top_table(result, self.coef, sort_by="none", adjust="none",
                              confint=self.confint).columns)


def fit_chunk(model: ChunkModel, values: NDArray[np.floating],
              feature_ids: FeatureIds | Sequence[str],
              weights: NDArray[np.floating] | None = None) -> LinearModelFit:
    """Map 1: fit one chunk of features (rows of ``values``, columns in design order).

    The chunk is fitted with its features known by position: the IDs serve only the messages,
    and are checked for repeats once over the whole run by the engines (an index of them per
    chunk would cost more than the fit). When the fit fails on the data (an infinite value, a
    bad weight or beta value), the chunk is fitted again with its IDs, which raises the same
    error naming the feature.

    Parameters
    ----------
    model : ChunkModel
    values : array of shape (n_rows, n_samples)
    feature_ids : object array of str or Arrow text, length n_rows
        For messages (an infinite value is reported by feature ID).
    weights : array of shape (n_rows, n_samples), optional
        The chunk's rows of a weights matrix.

    Returns
    -------
    LinearModelFit
        Its features are known by position within the chunk.
    """
    try:
        return _fit_values(model, values, None, weights)
    except ManylmError:
        ids = (feature_ids.to_numpy(zero_copy_only=False) if isinstance(feature_ids, pa.Array)
               else feature_ids)
        _fit_values(model, values, pd.Index(np.asarray(ids, dtype=object), name="feature"),
                    weights)  # raises the error again, naming the feature
        raise


def _fit_values(model: ChunkModel, values: NDArray[np.floating], index: pd.Index | None,
                weights: NDArray[np.floating] | None) -> LinearModelFit:
    """``lm_fit`` (and ``contrasts_fit``) of a chunk; its rows named by ``index`` or by position."""
    data: Any = values
    if model.transform is not None or index is not None:
        data = pd.DataFrame(values, index=pd.RangeIndex(values.shape[0]) if index is None
                            else index, columns=list(model.design.sample_ids), copy=False)
    if model.transform == "beta_to_m":
        from manylm.counts import beta_to_m

        data = beta_to_m(data, source=model.label).to_numpy() if index is None else beta_to_m(
            data, source=model.label)
    elif model.transform is not None:
        raise InputError(f"Unknown transform {model.transform!r}.")
    chunk_weights: Any = model.sample_weights
    if weights is not None:
        chunk_weights = weights if model.sample_weights is None else (
            weights * model.sample_weights[None, :])
    fit = lm_fit(data, model.design, weights=chunk_weights, n_jobs=1)
    return contrasts_fit(fit, model.contrasts) if model.contrasts is not None else fit


def fit_fields(model: ChunkModel, fit: LinearModelFit) -> dict[str, NDArray[np.float64]]:
    """The per-feature arrays of a chunk's fit that later steps need (tested columns only)."""
    fields = {name: np.asarray(getattr(fit, name), dtype=np.float64) for name in FIT_FIELDS}
    tested = model.tested()
    if tested != list(range(len(fit.coefficient_names))):
        for name in ("coefficients", "stdev_unscaled"):
            fields[name] = np.ascontiguousarray(fields[name][:, tested])
    return fields


def moderated_chunk(model: ChunkModel, fields: Mapping[str, NDArray[np.floating]],
                    posterior: Mapping[str, Any], var_prior: dict[int, float]) -> ModeratedFit:
    """A chunk's :class:`ModeratedFit`, given the prior estimated from every feature.

    Parameters
    ----------
    fields : dict
        The chunk's :data:`FIT_FIELDS`, from :func:`fit_fields` (tested coefficients only).
    posterior : dict
        The chunk's slices of ``s2_post`` and ``df_total``, and ``s2_prior`` and ``df_prior``
        (scalars, or the chunk's slices when they vary by feature).
    var_prior : dict of int to float
        B-statistic priors by position among the tested coefficients (estimated over every
        feature).
    """
    n_rows = fields["residual_variance"].shape[0]
    fit = replace(model.tested_template, feature_ids=pd.RangeIndex(n_rows), residuals=None,
                  fitted=None, coefficients=fields["coefficients"],
                  stdev_unscaled=fields["stdev_unscaled"],
                  residual_variance=fields["residual_variance"],
                  df_residual=fields["df_residual"], mean=fields["mean"])
    if not model.moderate:
        return ModeratedFit(fit=fit, df_total=fit.df_residual.astype(np.float64),
                            s2_post=fit.residual_variance, s2_prior=np.nan, df_prior=0.0,
                            treat_lfc=None, moderated=False)
    common = {"fit": fit, "df_total": posterior["df_total"], "s2_post": posterior["s2_post"],
              "s2_prior": posterior["s2_prior"], "df_prior": posterior["df_prior"],
              "moderated": True}
    if model.treat_lfc is not None:
        return ModeratedFit(treat_lfc=abs(float(model.treat_lfc)), **common)
    result = ModeratedFit(treat_lfc=None, proportion=model.proportion,
                          stdev_coef_lim=model.stdev_coef_lim, **common)
    return result.with_coefficient_priors(var_prior)


def table_chunk(model: ChunkModel, result: ModeratedFit, *, lods: bool = True,
                p_value: bool = True) -> dict[str, NDArray[np.float64]]:
    """Map 2: the chunk's table rows, unsorted, without the adjusted p-value (a global step).

    Returns the columns of :func:`manylm.top_table` in order, less ``adj_p_value``: computed
    by its own column functions (``top_table`` itself would also sort and gather each chunk).
    ``lods=False`` also leaves out the B-statistic (computed once its prior is known);
    ``p_value=False`` the p-value of a t table (known already: :mod:`manylm.engine.late_table`).
    """
    n_tested = len(model.tested())
    if n_tested == 1:
        columns = _t_columns_with_interval(result, 0, model.confint, lods=lods,
                                           p_value=p_value)
    else:
        columns = _f_columns(result, list(range(n_tested)))
    return {name: np.asarray(values, dtype=np.float64) for name, values in columns.items()}
