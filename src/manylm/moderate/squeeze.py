"""Empirical Bayes moderation of residual variances (limma's ``squeezeVar``)."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from manylm.errors import ManylmError
from manylm.moderate.distinct_values import broadcast_value
from manylm.moderate.fdist import fit_f_dist
from manylm.moderate.robust import fit_f_dist_robustly
from manylm.parallel import parallel_slices

__all__ = ["SqueezedVariances", "posterior_variance", "squeeze_var", "variance_prior"]


@dataclass(frozen=True)
class SqueezedVariances:
    """Prior df and variance (scalars or one per feature) and the posterior variances."""

    df_prior: float | NDArray[np.float64]
    var_prior: float | NDArray[np.float64]
    var_post: NDArray[np.float64]


def squeeze_var(
    var: ArrayLike,
    df: ArrayLike,
    *,
    covariate: ArrayLike | None = None,
    robust: bool = False,
    winsor_tail_p: tuple[float, float] = (0.05, 0.1),
) -> SqueezedVariances:
    """Shrink residual variances towards a common (or trended) prior value.

    Smyth (2004): with prior s0^2 on d0 df, the posterior variance of feature g is
    (d_g s_g^2 + d0 s0^2) / (d_g + d0). Reproduces limma's ``squeezeVar`` (limma 3.54),
    including ``var[df == 0] <- 0`` for features without residual df.
    """
    var, df_array = _variances_and_df(var, df)
    if var.shape[0] == 1:
        return SqueezedVariances(0.0, var.copy(), var.copy())
    df_prior, scale = _prior(var, df_array, covariate, robust, winsor_tail_p)
    return SqueezedVariances(df_prior, scale, posterior_variance(var, df_array, scale, df_prior))


def variance_prior(
    var: ArrayLike,
    df: ArrayLike,
    *,
    covariate: ArrayLike | None = None,
    robust: bool = False,
    winsor_tail_p: tuple[float, float] = (0.05, 0.1),
) -> tuple[float | NDArray[np.float64], float | NDArray[np.float64]]:
    """The prior df and variance of :func:`squeeze_var`, without the posterior variances (for
    an engine that makes them chunk by chunk)."""
    var, df_array = _variances_and_df(var, df)
    if var.shape[0] == 1:
        return 0.0, var.copy()
    return _prior(var, df_array, covariate, robust, winsor_tail_p)


def _variances_and_df(var: ArrayLike, df: ArrayLike
                      ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The variances (0 where df is 0) and the df (a 0-d array when one df is broadcast)."""
    var = np.asarray(var, dtype=np.float64)
    n = var.shape[0]
    if n == 0:
        raise ManylmError("No residual variances to moderate.")
    df_array = np.asarray(df, dtype=np.float64)
    if n == 1:
        return var, df_array
    constant = broadcast_value(df_array)
    if constant is not None:  # one df for all (a dense fit): a scalar
        df_array = np.asarray(constant)
        if constant == 0:
            var = np.zeros(n)
    elif df_array.ndim > 0 and df_array.shape[0] > 1:
        no_df = df_array == 0
        if no_df.any():
            var = var.copy()
            var[no_df] = 0.0
    return var, df_array


def _prior(var: NDArray[np.float64], df: NDArray[np.float64], covariate: ArrayLike | None,
           robust: bool, winsor_tail_p: tuple[float, float]
           ) -> tuple[float | NDArray[np.float64], float | NDArray[np.float64]]:
    df_prior: float | NDArray[np.float64]
    if robust:
        robust_fit = fit_f_dist_robustly(var, df, covariate, winsor_tail_p)
        scale = robust_fit.scale
        df_prior = robust_fit.df2_shrunk
    else:
        plain = fit_f_dist(var, df, covariate)
        scale = plain.scale
        df_prior = plain.df2
    if np.any(np.isnan(df_prior)):
        raise ManylmError("Could not estimate the prior degrees of freedom.")
    return df_prior, scale


def posterior_variance(
    var: NDArray[np.float64],
    df: NDArray[np.float64] | float,
    var_prior: float | NDArray[np.float64],
    df_prior: float | NDArray[np.float64],
) -> NDArray[np.float64]:
    """(df var + df_prior var_prior) / (df + df_prior), with infinite df_prior giving var_prior."""
    df_prior_array = np.asarray(df_prior, dtype=np.float64)
    finite = np.isfinite(df_prior_array)
    if (df_prior_array.ndim == 0 and finite and np.ndim(var_prior) == 0 and var.ndim == 1
            and np.ndim(df) <= 1 and var.dtype == np.float64):
        # one prior (no trend, not robust): one compiled pass on every core, no temporaries
        post = np.empty(var.shape[0])
        df_vector = np.broadcast_to(np.asarray(df, dtype=np.float64), var.shape)

        def run(part: slice) -> None:
            _posterior_kernel(var[part], df_vector[part], float(var_prior), float(df_prior),
                              post[part])

        parallel_slices(run, var.shape[0], min_items=100_000)
        return post
    if np.all(finite):
        return np.asarray((df * var + df_prior * var_prior) / (df + df_prior), dtype=np.float64)
    n = var.shape[0]
    post = np.broadcast_to(np.asarray(var_prior, dtype=np.float64), (n,)).copy()
    if np.any(finite):
        d0 = np.broadcast_to(df_prior_array, (n,))
        s0 = np.broadcast_to(np.asarray(var_prior, dtype=np.float64), (n,))
        d = np.broadcast_to(np.asarray(df, dtype=np.float64), (n,))
        idx = np.broadcast_to(finite, (n,))
        post[idx] = (d[idx] * var[idx] + d0[idx] * s0[idx]) / (d[idx] + d0[idx])
    return post


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _posterior_kernel(var, df, var_prior, df_prior, out):
    """``out = (df var + df_prior var_prior) / (df + df_prior)`` with one prior (0 / 0: NaN,
    as NumPy gives it: a feature with no residual df when the prior df is 0)."""
    weighted_prior = df_prior * var_prior
    for i in range(var.shape[0]):
        out[i] = (df[i] * var[i] + weighted_prior) / (df[i] + df_prior)
