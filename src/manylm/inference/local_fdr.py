"""Local false discovery rates from p-values, as ``qvalue::lfdr``."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from manylm.errors import DataError, InputError
from manylm.inference.kernel_density import gaussian_density
from manylm.inference.p_values import check_p_values
from manylm.inference.pi0 import default_lambdas, pi0_kernel
from manylm.inference.smoothing_spline import smooth_spline

__all__ = ["LFDR_TRANSFORMS", "local_fdr", "local_fdr_kernel"]

LFDR_TRANSFORMS: tuple[str, ...] = ("probit", "logit")
_INV_SQRT_2PI = 0.398942280401432677939946059934


def local_fdr(
    p_values: ArrayLike,
    *,
    pi0: float | None = None,
    transform: str = "probit",
    adjust: float = 1.5,
    truncate: bool = True,
    monotone: bool = True,
    eps: float = 1e-8,
) -> NDArray[np.float64]:
    """Local FDR of each p-value (qvalue 2.30's ``lfdr``).

    Efron et al. (2001), *Empirical Bayes analysis of a microarray experiment*, JASA 96;
    Storey's implementation: the p-values are mapped to the probit (or logit) scale, where the
    null density is known; their density is estimated with a Gaussian kernel (``density`` with
    ``adjust``) and smoothed with a GCV smoothing spline; the local FDR is
    ``pi0 * null density / estimated density``. Values above 1 are set to 1 (``truncate``) and
    the result is made non-decreasing in p (``monotone``). NaN p-values give NaN.

    Parameters
    ----------
    p_values : array-like
        In [0, 1]; NaN allowed. Any shape; the result has the same shape.
    pi0 : float, optional
        The null proportion; estimated with :func:`manylm.inference.pi0_estimate`'s defaults
        when not given.
    transform : {"probit", "logit"}
    adjust : float
        Multiplier of the kernel bandwidth (qvalue's ``adj``).
    truncate, monotone : bool
    eps : float
        p-values are kept ``eps`` away from 0 and 1 before the transform.

    Returns
    -------
    array, the shape of ``p_values``
    """
    checked = check_p_values(p_values)
    if transform not in LFDR_TRANSFORMS:
        raise InputError(f"The 'transform' parameter must be one of "
                         f"{', '.join(LFDR_TRANSFORMS)}. Got {transform!r}.")
    if not adjust > 0:
        raise InputError(f"The 'adjust' parameter must be positive. Got {adjust!r}.")
    observed = checked.values[checked.observed]
    if observed.size < 2:
        raise DataError("Local FDRs need at least 2 non-missing p-values (for a kernel "
                        f"density); got {observed.size}.")
    order = np.argsort(observed)
    if pi0 is None:
        pi0 = pi0_kernel(observed[order], default_lambdas(), method="smoother", smooth_df=3.0,
                         smooth_log_pi0=False).pi0
    elif not 0 < pi0 <= 1:
        raise InputError(f"The 'pi0' parameter must be in (0, 1]. Got {pi0!r}.")
    out = np.full(checked.values.shape, np.nan)
    out[checked.observed] = local_fdr_kernel(observed, order, float(pi0), transform=transform,
                                             adjust=adjust, truncate=truncate,
                                             monotone=monotone, eps=eps)
    return out.reshape(checked.shape)


def local_fdr_kernel(p: NDArray[np.float64], ascending: NDArray[np.intp], pi0: float, *,
                     transform: str, adjust: float, truncate: bool, monotone: bool,
                     eps: float) -> NDArray[np.float64]:
    """Local FDR of non-missing p-values whose ascending order is ``ascending``."""
    if transform == "probit":
        x = special.ndtri(np.clip(p, eps, 1 - eps))
        null_density = _INV_SQRT_2PI * np.exp(-0.5 * x * x)
    else:
        x = np.log((p + eps) / (1 - p + eps))
        null_density = np.exp(x) / (1 + np.exp(x)) ** 2
    # Both transforms keep the order of p, so x[ascending] is sorted.
    density = gaussian_density(x, adjust=adjust, sorted_values=x[ascending])
    fitted = smooth_spline(density.x, density.y).predict(x)
    lfdr = pi0 * null_density / fitted
    if truncate:
        lfdr[lfdr > 1] = 1.0
    if monotone:
        # Clipping at eps keeps the order of p (it only creates ties, with equal lfdr).
        lfdr[ascending] = np.maximum.accumulate(lfdr[ascending])
    return lfdr
