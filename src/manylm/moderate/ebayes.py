"""Moderated t and F statistics and B-statistics (limma's ``eBayes`` and ``treat``).

Smyth (2004), "Linear models and empirical Bayes methods for assessing differential expression
in microarray experiments", Statistical Applications in Genetics and Molecular Biology 3(1);
McCarthy & Smyth (2009) for ``treat``. The prior for the variances is estimated once from all
features (the reduce step); everything after it is per-feature arithmetic (the map step).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

from manylm.errors import InputError
from manylm.fit.result import LinearModelFit
from manylm.moderate.fstat import f_statistic
from manylm.moderate.squeeze import SqueezedVariances, squeeze_var
from manylm.moderate.student_t import student_t_sf

__all__ = ["ModeratedFit", "ebayes", "ordinary_statistics", "treat"]


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

    def _t(self, j: int) -> NDArray[np.floating]:
        coefficient = self.fit.coefficients[:, j]
        with np.errstate(invalid="ignore", divide="ignore"):
            se = self.fit.stdev_unscaled[:, j] * np.sqrt(self.s2_post)
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
        df = np.where(self.df_total > 0, self.df_total, np.nan)
        if self.treat_lfc is None:
            return 2 * student_t_sf(np.abs(self.t_of(j)), df)
        se = self.fit.stdev_unscaled[:, j] * np.sqrt(self.s2_post)
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
        value = _tmixture(self.t_of(j), self.fit.stdev_unscaled[:, j], self.df_total,
                          self.proportion, limits)
        return 1 / s2_prior_median if np.isnan(value) else value

    def lods_of(self, j: int) -> NDArray[np.floating] | None:
        """B-statistics (log-odds that the coefficient is non-zero) of coefficient ``j``."""
        if not self._has_lods:
            return None
        return self._cached(
            ("lods", j),
            lambda: _lods(self.t_of(j), self.fit.stdev_unscaled[:, j], self.var_prior_of(j),
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
        return f, _f_pvalue(f, df1, df2), df1

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


def _check_fit(fit: LinearModelFit) -> None:
    if not isinstance(fit, LinearModelFit):
        raise InputError(f"Expected a LinearModelFit from lm_fit; got {type(fit).__name__}.")
    if fit.n_features == 0:
        raise InputError("The fit has no features.")
    if np.nanmax(fit.df_residual, initial=0) == 0:
        raise InputError(
            "No residual degrees of freedom: the design has as many coefficients as there are "
            "samples, so variances (and hence t statistics) cannot be estimated. Use fewer "
            "coefficients or more samples."
        )
    if not np.any(np.isfinite(fit.residual_variance)):
        raise InputError("No feature has a finite residual variance.")


def _squeeze(fit: LinearModelFit, trend: bool | NDArray[np.floating], robust: bool,
             winsor_tail_p: tuple[float, float]) -> tuple[SqueezedVariances, NDArray[np.floating]]:
    covariate: NDArray[np.floating] | None
    if isinstance(trend, (bool, np.bool_)):
        covariate = fit.mean if trend else None
    else:
        covariate = np.asarray(trend, dtype=np.float64)
        if covariate.shape != (fit.n_features,):
            raise InputError(
                f"A numeric trend must have one value per feature ({fit.n_features}); got "
                f"{covariate.shape}."
            )
    squeezed = squeeze_var(
        fit.residual_variance, fit.df_residual, covariate=covariate, robust=robust,
        winsor_tail_p=winsor_tail_p,
    )
    df_total = fit.df_residual + squeezed.df_prior
    df_pooled = float(np.nansum(fit.df_residual))
    return squeezed, np.minimum(df_total, df_pooled)


def ebayes(
    fit: LinearModelFit,
    *,
    proportion: float = 0.01,
    stdev_coef_lim: tuple[float, float] = (0.1, 4.0),
    trend: bool | NDArray[np.floating] = False,
    robust: bool = False,
    winsor_tail_p: tuple[float, float] = (0.05, 0.1),
) -> ModeratedFit:
    """Moderated t statistics, F statistics and B-statistics (limma's ``eBayes``).

    Parameters
    ----------
    fit : LinearModelFit
    proportion : float
        Assumed proportion of features with a non-zero coefficient (for the B-statistic).
    stdev_coef_lim : (float, float)
        Limits on the prior standard deviation of non-zero coefficients.
    trend : bool or array of shape (n_features,)
        Let the prior variance depend on the mean (or on the covariate given).
    robust : bool
        Robust estimation of the prior (limma's ``robust=TRUE``).
    """
    _check_fit(fit)
    if not 0 < proportion < 1:
        raise InputError(f"The 'proportion' parameter must be in (0, 1). Got {proportion}.")
    squeezed, df_total = _squeeze(fit, trend, robust, winsor_tail_p)
    return ModeratedFit(
        fit=fit, df_total=df_total, s2_post=squeezed.var_post, s2_prior=squeezed.var_prior,
        df_prior=squeezed.df_prior, treat_lfc=None, moderated=True, proportion=proportion,
        stdev_coef_lim=stdev_coef_lim,
    )


def treat(
    fit: LinearModelFit,
    *,
    lfc: float = float(np.log2(1.2)),
    trend: bool | NDArray[np.floating] = False,
    robust: bool = False,
    winsor_tail_p: tuple[float, float] = (0.05, 0.1),
) -> ModeratedFit:
    """Moderated tests of |coefficient| > ``lfc`` (limma's ``treat``; McCarthy & Smyth 2009).

    The p-value is P(|T| > threshold) for the least favourable coefficient on the boundary,
    ``pt((|b| - lfc)/se) + pt((|b| + lfc)/se)`` upper tails; t is the shifted statistic, zero
    inside the threshold.
    """
    _check_fit(fit)
    if not np.isfinite(lfc):
        raise InputError(f"The 'lfc' parameter must be a finite number. Got {lfc}.")
    squeezed, df_total = _squeeze(fit, trend, robust, winsor_tail_p)
    return ModeratedFit(
        fit=fit, df_total=df_total, s2_post=squeezed.var_post,
        s2_prior=squeezed.var_prior, df_prior=squeezed.df_prior, treat_lfc=abs(float(lfc)),
        moderated=True,
    )


def ordinary_statistics(fit: LinearModelFit) -> ModeratedFit:
    """Ordinary least-squares t and F statistics, with no moderation."""
    _check_fit(fit)
    return ModeratedFit(
        fit=fit, df_total=fit.df_residual.astype(np.float64), s2_post=fit.residual_variance,
        s2_prior=np.nan,
        df_prior=0.0, treat_lfc=None, moderated=False,
    )


def _f_pvalue(f: NDArray[np.floating], df1: int, df2: Any) -> NDArray[np.floating]:
    df2 = np.broadcast_to(np.asarray(df2, dtype=np.float64), f.shape)
    with np.errstate(invalid="ignore"):
        return np.where(
            np.isinf(df2), stats.chi2.sf(f * df1, df1), stats.f.sf(f, df1, np.where(
                np.isinf(df2), 1.0, df2))
        )


def _tmixture(t: NDArray[np.floating], stdev_unscaled: NDArray[np.floating],
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
    df_max = float(np.max(df))
    if np.any(df < df_max):
        order = _largest_after_conversion(t, df, df_max, n_target)
        t_top = _convert_t(t[order], df[order], df_max)
    else:
        order = _largest_first(t, n_target)
        t_top = t[order]
    v1 = stdev_unscaled[order] ** 2
    r = np.arange(1, n_target + 1)
    p0 = 2 * stats.t.sf(t_top, df_max)
    p_target = ((r - 0.5) / n - (1 - p) * p0) / p
    v0 = np.zeros(n_target)
    positive = p_target > p0
    if positive.any():
        q_target = stats.t.isf(p_target[positive] / 2, df_max)
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
    tail = stats.t.logsf(t[smaller], df[smaller])
    converted[smaller] = stats.t.isf(np.exp(tail), df_max)
    return converted


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


def _largest_first(values: NDArray[np.floating], k: int) -> NDArray[np.intp]:
    """Positions of the k largest values, largest first, ties in input order (R's stable order).

    A partial selection, then a stable sort of the few selected: the same set and order as a full
    stable sort, without sorting every feature.
    """
    if k >= values.shape[0]:
        return np.argsort(-values, kind="stable")
    threshold = np.partition(values, values.shape[0] - k)[values.shape[0] - k]
    above = np.flatnonzero(values > threshold)
    ties = np.flatnonzero(values == threshold)[: k - above.shape[0]]
    chosen = np.sort(np.concatenate([above, ties]))
    return chosen[np.argsort(-values[chosen], kind="stable")]


def _lods(t: NDArray[np.floating], stdev_unscaled: NDArray[np.floating],
          var_prior: float, df_total: NDArray[np.floating],
          df_prior: float | NDArray[np.floating], proportion: float) -> NDArray[np.floating]:
    """B-statistic of one coefficient: log posterior odds that it is non-zero."""
    v = stdev_unscaled**2
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (v + var_prior) / v
        t2 = t**2
        infinite = np.asarray(df_prior) > 1e6
        d: Any = df_total
        if d.size and np.all(d == d.flat[0]):
            d = float(d.flat[0])  # one df for every feature: scalar arithmetic below
        if not infinite.any():
            kernel = (1 + d) / 2 * np.log((t2 + d) / (t2 / r + d))
        elif infinite.all():
            kernel = t2 * (1 - 1 / r) / 2
        else:
            kernel = np.where(
                infinite, t2 * (1 - 1 / r) / 2, (1 + d) / 2 * np.log((t2 + d) / (t2 / r + d))
            )
        return np.log(proportion / (1 - proportion)) - np.log(r) / 2 + kernel
