"""Moderated t and F statistics and B-statistics (limma's ``eBayes`` and ``treat``).

Smyth (2004), "Linear models and empirical Bayes methods for assessing differential expression
in microarray experiments", Statistical Applications in Genetics and Molecular Biology 3(1);
McCarthy & Smyth (2009) for ``treat``. The prior for the variances is estimated once from all
features (the reduce step); everything after it is per-feature arithmetic (the map step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

from manylm.errors import InputError
from manylm.fit.result import LinearModelFit
from manylm.moderate.fstat import f_statistic
from manylm.moderate.squeeze import SqueezedVariances, squeeze_var

__all__ = ["ModeratedFit", "ebayes", "ordinary_statistics", "treat"]


@dataclass(frozen=True)
class ModeratedFit:
    """Test statistics for every feature and coefficient, with the prior they came from.

    Attributes
    ----------
    fit : LinearModelFit
    t, p_value : arrays of shape (n_features, n_coefficients)
    lods : array of shape (n_features, n_coefficients) or None
        B-statistics (log-odds of differential expression); None for ``treat`` and ordinary fits.
    df_total : array of shape (n_features,)
    s2_post : array of shape (n_features,)
        Posterior (moderated) residual variance; the residual variance for ordinary fits.
    s2_prior, df_prior : float or array of shape (n_features,)
    var_prior : array of shape (n_coefficients,) or None
        Prior variance of the non-zero coefficients, used by the B-statistic.
    F, F_p_value : arrays of shape (n_features,) or None
        Moderated F over all coefficients (only for a full-rank design, as limma).
    F_df1 : int
    treat_lfc : float or None
    moderated : bool
    proportion : float
    """

    fit: LinearModelFit
    t: NDArray[np.floating]
    p_value: NDArray[np.floating]
    lods: NDArray[np.floating] | None
    df_total: NDArray[np.floating]
    s2_post: NDArray[np.floating]
    s2_prior: float | NDArray[np.floating]
    df_prior: float | NDArray[np.floating]
    var_prior: NDArray[np.floating] | None
    F: NDArray[np.floating] | None
    F_p_value: NDArray[np.floating] | None
    F_df1: int
    treat_lfc: float | None
    moderated: bool
    proportion: float

    @property
    def feature_ids(self) -> pd.Index:
        return self.fit.feature_ids

    @property
    def coefficient_names(self) -> list[str]:
        return self.fit.coefficient_names

    def f_test(
        self, coefficients: list[int]
    ) -> tuple[NDArray[np.floating], NDArray[np.floating], int]:
        """F statistic, its p-value and numerator df over some coefficients (by position)."""
        cov = self.fit.cov_unscaled[np.ix_(coefficients, coefficients)]
        f, df1 = f_statistic(self.t[:, coefficients], cov)
        df2 = self.df_prior + self.fit.df_residual if self.moderated else self.fit.df_residual
        return f, _f_pvalue(f, df1, df2), df1

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
    s2_post = squeezed.var_post
    with np.errstate(invalid="ignore", divide="ignore"):
        t = fit.coefficients / fit.stdev_unscaled / np.sqrt(s2_post)[:, None]
    p_value = 2 * stats.t.sf(np.abs(t), df_total[:, None])
    # B-statistic (Smyth 2004, section 5).
    s2_prior_median = float(np.median(np.asarray(squeezed.var_prior)))
    limits = np.asarray(stdev_coef_lim, dtype=np.float64) ** 2 / s2_prior_median
    var_prior = np.array([
        _tmixture(t[:, j], fit.stdev_unscaled[:, j], df_total, proportion, limits)
        for j in range(t.shape[1])
    ])
    failed = np.isnan(var_prior)
    if failed.any():
        var_prior[failed] = 1 / s2_prior_median if np.ndim(squeezed.var_prior) else (
            1 / float(squeezed.var_prior))
    lods = _lods(t, fit.stdev_unscaled, var_prior, df_total, squeezed.df_prior, proportion)
    f_value = f_p = None
    f_df1 = 0
    if fit.contrasts is not None or fit.design.estimable.all():
        f_value, f_df1 = f_statistic(t, fit.cov_unscaled)
        f_p = _f_pvalue(f_value, f_df1, squeezed.df_prior + fit.df_residual)
    return ModeratedFit(
        fit=fit, t=t, p_value=p_value, lods=lods, df_total=df_total, s2_post=s2_post,
        s2_prior=squeezed.var_prior, df_prior=squeezed.df_prior, var_prior=var_prior,
        F=f_value, F_p_value=f_p, F_df1=f_df1, treat_lfc=None, moderated=True,
        proportion=proportion,
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
    lfc = abs(float(lfc))
    coefficients = fit.coefficients
    se = fit.stdev_unscaled * np.sqrt(squeezed.var_post)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        right = (np.abs(coefficients) - lfc) / se
        left = (np.abs(coefficients) + lfc) / se
    p_value = stats.t.sf(right, df_total[:, None]) + stats.t.sf(left, df_total[:, None])
    right = np.maximum(right, 0)
    t = np.zeros_like(coefficients)
    up = coefficients > lfc
    down = coefficients < -lfc
    t[up] = right[up]
    t[down] = -right[down]
    t[np.isnan(coefficients) | np.isnan(se)] = np.nan
    return ModeratedFit(
        fit=fit, t=t, p_value=p_value, lods=None, df_total=df_total,
        s2_post=squeezed.var_post, s2_prior=squeezed.var_prior, df_prior=squeezed.df_prior,
        var_prior=None, F=None, F_p_value=None, F_df1=0, treat_lfc=lfc, moderated=True,
        proportion=0.01,
    )


def ordinary_statistics(fit: LinearModelFit) -> ModeratedFit:
    """Ordinary least-squares t and F statistics, with no moderation."""
    _check_fit(fit)
    s2 = fit.residual_variance
    with np.errstate(invalid="ignore", divide="ignore"):
        t = fit.coefficients / fit.stdev_unscaled / np.sqrt(s2)[:, None]
    df = fit.df_residual.astype(np.float64)
    df_for_p = np.where(df > 0, df, np.nan)
    p_value = 2 * stats.t.sf(np.abs(t), df_for_p[:, None])
    f_value = f_p = None
    f_df1 = 0
    if fit.contrasts is not None or fit.design.estimable.all():
        f_value, f_df1 = f_statistic(t, fit.cov_unscaled)
        f_p = _f_pvalue(f_value, f_df1, df_for_p)
    return ModeratedFit(
        fit=fit, t=t, p_value=p_value, lods=None, df_total=df, s2_post=s2, s2_prior=np.nan,
        df_prior=0.0, var_prior=None, F=f_value, F_p_value=f_p, F_df1=f_df1, treat_lfc=None,
        moderated=False, proportion=0.01,
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
    t, stdev_unscaled, df = t[keep], stdev_unscaled[keep], df[keep]
    n = t.shape[0]
    n_target = int(np.ceil(proportion / 2 * n))
    if n_target < 1:
        return float("nan")
    p = max(n_target / n, proportion)
    t = np.abs(t)
    df_max = float(np.max(df))
    smaller = df < df_max
    if smaller.any():
        tail = stats.t.logsf(t[smaller], df[smaller])
        t = t.copy()
        t[smaller] = stats.t.isf(np.exp(tail), df_max)
    order = np.argsort(-t, kind="stable")[:n_target]
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


def _lods(t: NDArray[np.floating], stdev_unscaled: NDArray[np.floating],
          var_prior: NDArray[np.floating], df_total: NDArray[np.floating],
          df_prior: float | NDArray[np.floating], proportion: float) -> NDArray[np.floating]:
    """B-statistic: log posterior odds that the coefficient is non-zero."""
    v = stdev_unscaled**2
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (v + var_prior[None, :]) / v
        t2 = t**2
        infinite = np.broadcast_to(np.asarray(df_prior) > 1e6, (t.shape[0],))[:, None]
        d = df_total[:, None]
        kernel = np.where(
            infinite,
            t2 * (1 - 1 / r) / 2,
            (1 + d) / 2 * np.log((t2 + d) / (t2 / r + d)),
        )
        return np.log(proportion / (1 - proportion)) - np.log(r) / 2 + kernel
