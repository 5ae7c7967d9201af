"""Storey's q-values (``qvalue::qvalue``): FDR analogues of p-values, with pi0 and local FDR."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from manylm.errors import DataError, InputError, ManylmWarning
from manylm.inference.local_fdr import LFDR_TRANSFORMS, local_fdr_kernel
from manylm.inference.p_values import check_p_values
from manylm.inference.pi0 import PI0_METHODS, check_lambdas, pi0_kernel

__all__ = ["QValues", "qvalue"]


@dataclass(frozen=True)
class QValues:
    """q-values, local FDRs and the pi0 estimate behind them (qvalue's ``qvalue`` object).

    Attributes
    ----------
    q_values : array, the shape of the p-values
        NaN where the p-value is missing.
    lfdr : array, the shape of the p-values, or None
        Local FDR (None when not computed).
    pi0 : float
        The proportion of true nulls used.
    pi0_method : str
        ``"smoother"``, ``"bootstrap"``, ``"lambda"`` (one lambda) or ``"given"``.
    lambdas, pi0_by_lambda : array of shape (n_lambdas,) or None
        The lambda grid and ``pi0(lambda)`` (None when pi0 was given).
    pi0_smoothed : array of shape (n_lambdas,) or None
        The smoothing spline at each lambda (smoother only).
    pfdr : bool
        Whether q-values are for the positive FDR.
    fdr_level : float or None
    significant : array of bool, the shape of the p-values, or None
        ``q_value <= fdr_level`` (False where the p-value is missing) when a level was given.
    index : pandas.Index or None
        The labels of a Series input, used by :meth:`to_frame`.
    """

    q_values: NDArray[np.float64]
    lfdr: NDArray[np.float64] | None
    pi0: float
    pi0_method: str
    lambdas: NDArray[np.float64] | None
    pi0_by_lambda: NDArray[np.float64] | None
    pi0_smoothed: NDArray[np.float64] | None
    pfdr: bool
    fdr_level: float | None = None
    significant: NDArray[np.bool_] | None = None
    index: pd.Index | None = None

    def to_frame(self) -> pd.DataFrame:
        """Columns ``q_value`` and ``lfdr`` (and ``significant``), one row per p-value."""
        columns: dict[str, Any] = {"q_value": self.q_values.ravel()}
        if self.lfdr is not None:
            columns["lfdr"] = self.lfdr.ravel()
        if self.significant is not None:
            columns["significant"] = self.significant.ravel()
        return pd.DataFrame(columns, index=self.index)

    def summary(self) -> dict[str, Any]:
        """The pi0 estimate and options as plain numbers and lists, for a run record."""
        def listed(values: NDArray[np.float64] | None) -> list[float] | None:
            return None if values is None else [float(v) for v in values]

        observed = ~np.isnan(self.q_values)
        summary: dict[str, Any] = {
            "pi0": self.pi0, "pi0_method": self.pi0_method, "pfdr": self.pfdr,
            "n_tests": int(observed.sum()), "n_missing": int((~observed).sum()),
            "lambdas": listed(self.lambdas), "pi0_by_lambda": listed(self.pi0_by_lambda),
            "pi0_smoothed": listed(self.pi0_smoothed),
        }
        if self.fdr_level is not None and self.significant is not None:
            summary["fdr_level"] = self.fdr_level
            summary["n_significant"] = int(self.significant.sum())
        return summary


def qvalue(
    p_values: ArrayLike,
    *,
    pi0_method: str = "smoother",
    lambdas: ArrayLike | None = None,
    smooth_df: float = 3,
    smooth_log_pi0: bool = False,
    pi0: float | None = None,
    pfdr: bool = False,
    fdr_level: float | None = None,
    lfdr: bool = True,
    lfdr_transform: str = "probit",
    lfdr_adjust: float = 1.5,
    lfdr_truncate: bool = True,
    lfdr_monotone: bool = True,
    lfdr_eps: float = 1e-8,
) -> QValues:
    """q-values, pi0 and local FDRs of a family of p-values (qvalue 2.30's ``qvalue``).

    Storey (2002), JRSS B 64; Storey & Tibshirani (2003), PNAS 100. With the m non-missing
    p-values sorted, ``q(p_(i)) = pi0 * min_{j >= i} min(1, m p_(j) / j)``; with ``pfdr`` the
    positive FDR, dividing also by ``1 - (1 - p_(j))^m``. pi0 is estimated as
    :func:`manylm.inference.pi0_estimate` does unless given; local FDRs as
    :func:`manylm.inference.local_fdr`. NaN p-values are carried (NaN out) and do not count in m.

    Parameters
    ----------
    p_values : array-like or pandas.Series
        In [0, 1]; NaN allowed; any shape (one family).
    pi0_method : {"smoother", "bootstrap"}
    lambdas : array-like, optional
        pi0's tuning grid (default 0.05, 0.10, ..., 0.95).
    smooth_df : float
    smooth_log_pi0 : bool
    pi0 : float, optional
        A fixed pi0 in (0, 1] instead of an estimate.
    pfdr : bool
        q-values for the positive FDR. As in qvalue, a p-value of exactly 0 then gives NaN
        (0/0), with a warning.
    fdr_level : float, optional
        In (0, 1]: also report ``q_value <= fdr_level``.
    lfdr : bool
        Compute local FDRs.
    lfdr_transform, lfdr_adjust, lfdr_truncate, lfdr_monotone, lfdr_eps
        ``lfdr``'s ``transf``, ``adj``, ``trunc``, ``monotone`` and ``eps``.

    Returns
    -------
    QValues
    """
    checked = check_p_values(p_values)
    grid = check_lambdas(lambdas)
    if pi0_method not in PI0_METHODS:
        raise InputError(f"The 'pi0_method' parameter must be one of {', '.join(PI0_METHODS)}. "
                         f"Got {pi0_method!r}.")
    if pi0 is not None and not 0 < pi0 <= 1:
        raise InputError(f"The 'pi0' parameter must be in (0, 1]. Got {pi0!r}.")
    if fdr_level is not None and not 0 < fdr_level <= 1:
        raise InputError(f"The 'fdr_level' parameter must be in (0, 1]. Got {fdr_level!r}.")
    if pi0 is None and grid.size > 1 and not 1 < smooth_df <= grid.size:
        raise InputError(f"The 'smooth_df' parameter must be in (1, {grid.size}] (the number of "
                         f"lambdas). Got {smooth_df!r}.")
    if lfdr and lfdr_transform not in LFDR_TRANSFORMS:
        raise InputError(f"The 'lfdr_transform' parameter must be one of "
                         f"{', '.join(LFDR_TRANSFORMS)}. Got {lfdr_transform!r}.")
    if lfdr and not lfdr_adjust > 0:
        raise InputError(f"The 'lfdr_adjust' parameter must be positive. Got {lfdr_adjust!r}.")

    observed = checked.values[checked.observed]
    if lfdr and observed.size < 2:
        raise DataError("Local FDRs need at least 2 non-missing p-values (for a kernel "
                        f"density); got {observed.size}. Pass lfdr=False.")
    ascending = np.argsort(observed)  # ties need no fixed order (see q_value_kernel)
    if pi0 is None:
        estimate = pi0_kernel(observed[ascending], grid, method=pi0_method,
                              smooth_df=float(smooth_df), smooth_log_pi0=smooth_log_pi0)
        pi0_value, method = estimate.pi0, estimate.method
        lambdas_used: NDArray[np.float64] | None = estimate.lambdas
        pi0_by_lambda: NDArray[np.float64] | None = estimate.pi0_by_lambda
        pi0_smoothed = estimate.pi0_smoothed
    else:
        pi0_value, method = float(pi0), "given"
        lambdas_used = pi0_by_lambda = pi0_smoothed = None
    if pfdr and np.any(observed == 0):
        warnings.warn(
            f"{int(np.sum(observed == 0))} p-values are exactly 0; their pFDR q-values are NaN "
            "(0/0), as in qvalue. Use pfdr=False, or floor the p-values, to get numbers.",
            ManylmWarning, stacklevel=2)

    def scatter(values: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.full(checked.values.shape, np.nan)
        out[checked.observed] = values
        return out.reshape(checked.shape)

    q_values = scatter(q_value_kernel(observed, ascending, pi0_value, pfdr=pfdr))
    local = None
    if lfdr:
        local = scatter(local_fdr_kernel(observed, ascending, pi0_value,
                                         transform=lfdr_transform, adjust=lfdr_adjust,
                                         truncate=lfdr_truncate, monotone=lfdr_monotone,
                                         eps=lfdr_eps))
    significant = None
    if fdr_level is not None:
        with np.errstate(invalid="ignore"):
            significant = q_values <= fdr_level
    return QValues(q_values, local, pi0_value, method, lambdas_used, pi0_by_lambda,
                   pi0_smoothed, pfdr=pfdr, fdr_level=fdr_level, significant=significant,
                   index=checked.labels)


def q_value_kernel(p: NDArray[np.float64], ascending: NDArray[np.intp], pi0: float, *,
                   pfdr: bool) -> NDArray[np.float64]:
    """q-values of non-missing p-values whose ascending order is ``ascending``.

    Ties need no care: tied p-values get the value of the tie's largest rank whatever their
    order, and equal local FDRs stay equal under the running maximum.
    """
    m = p.shape[0]
    descending = ascending[::-1]
    ranked = p[descending]
    rank = np.arange(m, 0, -1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if pfdr:
            ratio = ranked * m / (rank * (1 - (1 - ranked) ** m))
        else:
            ratio = ranked * m / rank
    out = np.empty(m)
    out[descending] = pi0 * np.minimum(1.0, np.minimum.accumulate(ratio))
    return out
