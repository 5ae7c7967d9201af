"""The moderated (or ordinary) test statistics of a fit, computed lazily per coefficient."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.fit.result import LinearModelFit
from manylm.moderate.bstatistic import f_pvalue, lods, tmixture
from manylm.moderate.distinct_values import broadcast_value
from manylm.moderate.fstat import f_statistic
from manylm.moderate.student_t import student_t_sf

__all__ = ["ModeratedFit"]


@dataclass(frozen=True)
class ModeratedFit:
    """Test statistics for every feature and coefficient, with the prior they came from.

    p-values, B-statistics and the F statistic are computed on first access, one coefficient at
    a time, and cached (a table for one coefficient never pays for the others).

    Attributes
    ----------
    fit : LinearModelFit
    t : array of shape (n_features, n_coefficients), computed on access
        Moderated t (treat: the shifted t, zero inside the threshold; ordinary: ordinary t).
    df_total : array of shape (n_features,)
    s2_post : array of shape (n_features,)
        Posterior (moderated) residual variance; the residual variance for ordinary fits.
    s2_prior, df_prior : float or array of shape (n_features,)
    treat_lfc : float or None
    moderated : bool
    proportion : float
    p_value, lods, var_prior, F, F_p_value, F_df1 : computed on access (see the properties).
    """

    fit: LinearModelFit
    df_total: NDArray[np.floating]
    s2_post: NDArray[np.floating]
    s2_prior: float | NDArray[np.floating]
    df_prior: float | NDArray[np.floating]
    treat_lfc: float | None
    moderated: bool
    proportion: float = 0.01
    stdev_coef_lim: tuple[float, float] = (0.1, 4.0)
    _cache: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def feature_ids(self) -> pd.Index:
        return self.fit.feature_ids

    @property
    def coefficient_names(self) -> list[str]:
        return self.fit.coefficient_names

    def _cached(self, key: Any, compute: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    @property
    def n_coefficients(self) -> int:
        return len(self.fit.coefficient_names)

    # ------------------------------------------------------------ t statistics
    def t_of(self, j: int) -> NDArray[np.floating]:
        """t statistics of coefficient ``j`` (treat: shifted towards zero by the threshold)."""
        return self._cached(("t", j), lambda: self._t(j))

    def standard_error_of(self, j: int) -> NDArray[np.floating]:
        """Standard errors of coefficient ``j``: unscaled stdev x posterior residual sd."""
        return self._cached(("se", j), lambda: self.fit.stdev_unscaled[:, j] * self._s_post)

    @property
    def _s_post(self) -> NDArray[np.floating]:
        return self._cached("s_post", lambda: np.sqrt(self.s2_post))

    def _t(self, j: int) -> NDArray[np.floating]:
        coefficient = self.fit.coefficients[:, j]
        se = self.standard_error_of(j)
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.treat_lfc is None:
                return coefficient / se
            lfc = self.treat_lfc
            beyond = np.maximum((np.abs(coefficient) - lfc) / se, 0)
        t = np.zeros_like(coefficient)
        up, down = coefficient > lfc, coefficient < -lfc
        t[up] = beyond[up]
        t[down] = -beyond[down]
        t[np.isnan(coefficient) | np.isnan(se)] = np.nan
        return t

    @property
    def t(self) -> NDArray[np.floating]:
        """t statistics of every coefficient, shape (n_features, n_coefficients)."""
        return np.column_stack([self.t_of(j) for j in range(self.n_coefficients)])

    # ---------------------------------------------------------------- p-values
    def p_value_of(self, j: int) -> NDArray[np.floating]:
        """Two-sided p-values of coefficient ``j`` (treat: of |coefficient| > lfc)."""
        return self._cached(("p", j), lambda: self._p_value(j))

    def _p_value(self, j: int) -> NDArray[np.floating]:
        constant = broadcast_value(self.df_total)  # one df for all (a dense fit): a scalar
        df: float | NDArray[np.floating] = (
            np.where(self.df_total > 0, self.df_total, np.nan) if constant is None
            else (constant if constant > 0 else np.nan))
        if self.treat_lfc is None:
            tails = student_t_sf(np.abs(self.t_of(j)), df)
            tails *= 2
            return tails
        se = self.standard_error_of(j)
        coefficient = np.abs(self.fit.coefficients[:, j])
        with np.errstate(invalid="ignore", divide="ignore"):
            right = (coefficient - self.treat_lfc) / se
            left = (coefficient + self.treat_lfc) / se
        return student_t_sf(right, df) + student_t_sf(left, df)

    @property
    def p_value(self) -> NDArray[np.floating]:
        """p-values of every coefficient, shape (n_features, n_coefficients)."""
        return np.column_stack([self.p_value_of(j) for j in range(self.n_coefficients)])

    # ------------------------------------------------------------- B-statistic
    @property
    def var_prior(self) -> NDArray[np.floating] | None:
        """Prior variance of the non-zero coefficients (limma's ``var.prior``), per coefficient."""
        if not self._has_lods:
            return None
        return np.array([self.var_prior_of(j) for j in range(self.n_coefficients)])

    @property
    def _has_lods(self) -> bool:
        return self.moderated and self.treat_lfc is None

    def var_prior_of(self, j: int) -> float:
        """Prior variance of coefficient ``j`` when it is non-zero (limma's ``tmixture.vector``)."""
        return self._cached(("var_prior", j), lambda: self._var_prior(j))

    def _var_prior(self, j: int) -> float:
        s2_prior_median = float(np.median(np.asarray(self.s2_prior)))
        limits = np.asarray(self.stdev_coef_lim, dtype=np.float64) ** 2 / s2_prior_median
        value = tmixture(self.t_of(j), self.fit.stdev_unscaled[:, j], self.df_total,
                          self.proportion, limits)
        return 1 / s2_prior_median if np.isnan(value) else value

    def with_coefficient_priors(self, var_prior: dict[int, float]) -> ModeratedFit:
        """Use the given B-statistic priors (by coefficient position) instead of estimating them.

        The prior of a non-zero coefficient comes from the largest t of all features; an engine
        that moderates a chunk of features at a time estimates it once over every chunk and
        hands it to each chunk here. Returns ``self``.
        """
        for j, value in var_prior.items():
            self._cache["var_prior", j] = float(value)
        return self

    def lods_of(self, j: int) -> NDArray[np.floating] | None:
        """B-statistics (log-odds that the coefficient is non-zero) of coefficient ``j``."""
        if not self._has_lods:
            return None
        return self._cached(
            ("lods", j),
            lambda: lods(self.t_of(j), self.fit.stdev_unscaled[:, j], self.var_prior_of(j),
                          self.df_total, self.df_prior, self.proportion),
        )

    @property
    def lods(self) -> NDArray[np.floating] | None:
        if not self._has_lods:
            return None
        columns = [self.lods_of(j) for j in range(self.n_coefficients)]
        return np.column_stack([c for c in columns if c is not None])

    # -------------------------------------------------------------- F statistic
    def f_test(
        self, coefficients: list[int]
    ) -> tuple[NDArray[np.floating], NDArray[np.floating], int]:
        """F statistic, its p-value and numerator df over some coefficients (by position)."""
        return self._cached(
            ("F", tuple(coefficients)), lambda: self._f_test(coefficients)
        )

    def _f_test(self, coefficients: list[int]) -> tuple[
            NDArray[np.floating], NDArray[np.floating], int]:
        cov = self.fit.cov_unscaled[np.ix_(coefficients, coefficients)]
        t = np.column_stack([self.t_of(j) for j in coefficients])
        f, df1 = f_statistic(t, cov)
        if self.moderated:
            df2 = np.asarray(self.df_prior + self.fit.df_residual, dtype=np.float64)
        else:
            df2 = np.where(self.fit.df_residual > 0, self.fit.df_residual, np.nan)
        return f, f_pvalue(f, df1, df2), df1

    @property
    def _f_available(self) -> bool:
        # limma computes the overall F only for a full-rank design (and never for treat).
        return self.treat_lfc is None and (
            self.fit.contrasts is not None or bool(self.fit.design.estimable.all()))

    @property
    def F(self) -> NDArray[np.floating] | None:
        """Moderated F over all coefficients (None for treat or a rank-deficient design)."""
        if not self._f_available:
            return None
        return self.f_test(list(range(self.n_coefficients)))[0]

    @property
    def F_p_value(self) -> NDArray[np.floating] | None:
        if not self._f_available:
            return None
        return self.f_test(list(range(self.n_coefficients)))[1]

    @property
    def F_df1(self) -> int:
        return self.f_test(list(range(self.n_coefficients)))[2] if self._f_available else 0

    # ------------------------------------------------------------------ views
    def subset(self, features: NDArray[np.bool_]) -> ModeratedFit:
        """The results for some features only (the prior is kept as estimated from all)."""

        def cut(value: Any) -> Any:
            return value[features] if np.ndim(value) >= 1 else value

        subset = replace(
            self, fit=self.fit.subset(features),
            df_total=self.df_total[features], s2_post=self.s2_post[features],
            s2_prior=cut(self.s2_prior), df_prior=cut(self.df_prior),
        )
        if self._has_lods:
            # The B-statistic's prior, like the variance prior, comes from all features.
            for j in range(self.n_coefficients):
                subset._cache["var_prior", j] = self.var_prior_of(j)
        return subset

    def top_table(self, coef: Any = None, **options: Any) -> pd.DataFrame:
        """The table of results; see :func:`manylm.top_table`."""
        from manylm.inference.tables import top_table

        return top_table(self, coef, **options)

    def decide_tests(self, **options: Any) -> pd.DataFrame:
        """-1/0/1 calls per feature and coefficient; see :func:`manylm.decide_tests`."""
        from manylm.inference.decide import decide_tests

        return decide_tests(self, **options)
