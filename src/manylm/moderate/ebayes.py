"""Moderated t and F statistics and B-statistics (limma's ``eBayes`` and ``treat``).

Smyth (2004), "Linear models and empirical Bayes methods for assessing differential expression
in microarray experiments", Statistical Applications in Genetics and Molecular Biology 3(1);
McCarthy & Smyth (2009) for ``treat``. The prior for the variances is estimated once from all
features (the reduce step); everything after it is per-feature arithmetic (the map step).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from manylm.errors import InputError
from manylm.fit.result import LinearModelFit
from manylm.moderate.distinct_values import broadcast_value
from manylm.moderate.moderated_fit import ModeratedFit
from manylm.moderate.squeeze import SqueezedVariances, squeeze_var

__all__ = ["check_residuals", "ebayes", "moderate_variances", "ordinary_statistics",
           "pooled_residual_df", "treat"]


def _check_fit(fit: LinearModelFit) -> None:
    if not isinstance(fit, LinearModelFit):
        raise InputError(f"Expected a LinearModelFit from lm_fit; got {type(fit).__name__}.")
    if fit.n_features == 0:
        raise InputError("The fit has no features.")
    check_residuals(fit.df_residual, fit.residual_variance)


def check_residuals(df_residual: NDArray[np.floating],
                    residual_variance: NDArray[np.floating]) -> None:
    """Refuse residuals that cannot give a t statistic (no df, or no finite variance).

    Parameters
    ----------
    df_residual, residual_variance : arrays of shape (n_features,)
        Of every feature: the check is global, so an engine that fits features in chunks calls
        it once, on all of them.
    """
    constant = broadcast_value(df_residual)
    if (constant if constant is not None else np.nanmax(df_residual, initial=0)) == 0:
        raise InputError(
            "No residual degrees of freedom: the design has as many coefficients as there are "
            "samples, or (with missing values) as each feature has observed values, so "
            "variances (and hence t statistics) cannot be estimated. Use fewer coefficients or "
            "more samples, or check the matrix for missing values."
        )
    if not np.any(np.isfinite(residual_variance)):
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
    return moderate_variances(fit.residual_variance, fit.df_residual, covariate=covariate,
                              robust=robust, winsor_tail_p=winsor_tail_p)


def moderate_variances(
    residual_variance: NDArray[np.floating],
    df_residual: NDArray[np.floating],
    *,
    covariate: NDArray[np.floating] | None = None,
    robust: bool = False,
    winsor_tail_p: tuple[float, float] = (0.05, 0.1),
) -> tuple[SqueezedVariances, NDArray[np.floating]]:
    """The reduce step of eBayes: the prior from every feature, and each feature's total df.

    limma's ``.ebayes`` up to the moderated t: ``squeezeVar`` over all features, then
    ``df.total = min(df.residual + df.prior, sum(df.residual))``. Everything after it is
    per-feature arithmetic given this result, so a chunked engine calls this once on the
    residual variances of all features and moderates each chunk with slices of the result.

    Parameters
    ----------
    residual_variance, df_residual : arrays of shape (n_features,)
    covariate : array of shape (n_features,), optional
        The trend covariate (limma's ``trend=TRUE``: the mean expression).
    robust : bool
    winsor_tail_p : (float, float)

    Returns
    -------
    squeezed : SqueezedVariances
        Prior df and variance (scalars, or one per feature with robust / trend) and the
        posterior variances, shape (n_features,).
    df_total : array of shape (n_features,)
    """
    squeezed = squeeze_var(
        residual_variance, df_residual, covariate=covariate, robust=robust,
        winsor_tail_p=winsor_tail_p,
    )
    constant = broadcast_value(df_residual)
    if constant is not None and np.isfinite(constant) and np.ndim(squeezed.df_prior) == 0:
        # one df for every feature (a dense fit): df.total is one value too
        total = min(constant + float(squeezed.df_prior), constant * df_residual.shape[0])
        return squeezed, np.broadcast_to(np.float64(total), df_residual.shape)
    df_total = df_residual + squeezed.df_prior
    return squeezed, np.minimum(df_total, pooled_residual_df(df_residual))


def pooled_residual_df(df_residual: NDArray[np.floating]) -> float:
    """The residual df of all features summed (NaN, a feature without data, counted as 0):
    the largest total df, limma's ``sum(df.residual)`` in ``df.total``."""
    df_pooled = float(np.sum(df_residual))
    if np.isnan(df_pooled):  # sum without a copy; the NaN df (no data) only when there are some
        df_pooled = float(np.nansum(df_residual))
    return df_pooled


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
