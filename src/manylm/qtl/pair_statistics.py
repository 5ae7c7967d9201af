"""Statistics of (variant, phenotype) pairs from their products with the genotype directions.

With ``z_i = <u_i, y>`` (see :mod:`manylm.qtl.genotype_terms`), ``D`` the phenotype's
complete-case share of its residual sum of squares and ``s = |y - covariate fit|``:

* t models (linear, interaction): ``t = z_last * sqrt(df / (D - sum z_i^2))``,
  ``beta = z_last * s * beta_scale``, ``se = s * beta_scale * sqrt((D - sum z_i^2) / df)``; for
  the linear model this is Matrix eQTL's ``t = r sqrt(df / (1 - r^2))`` with ``r = z / sqrt(D)``.
* ANOVA: ``F = (sum z_i^2 / j) / ((D - sum z_i^2) / df)``; beta, se and t are NaN.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from manylm.qtl.thresholds import f_p_value, t_p_value

__all__ = ["explained_and_available", "pair_statistics"]


def explained_and_available(model: str, z: NDArray[np.floating],
                            share: NDArray[np.floating] | float = 1.0
                            ) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """The two sums of squares compared with the threshold (see :mod:`manylm.qtl.thresholds`).

    Parameters
    ----------
    model : {"linear", "anova", "interaction"}
    z : array of shape (n_columns, ...)
        Products of each genotype direction with the standardised phenotypes.
    share : float or array broadcastable to ``z[0]``
        ``D``: 1, or the complete-case share for variants with missing calls.
    """
    if model == "linear":
        return z[0] * z[0], np.broadcast_to(share, z[0].shape)
    if model == "interaction":
        return z[1] * z[1], share - z[0] * z[0]
    return z[0] * z[0] + z[1] * z[1], np.broadcast_to(share, z[0].shape)


def pair_statistics(model: str, z: NDArray[np.float64], share: NDArray[np.float64],
                    df: NDArray[np.int64], n_terms: NDArray[np.int64],
                    residual_norm: NDArray[np.float64], beta_scale: NDArray[np.float64],
                    ) -> dict[str, NDArray[np.float64]]:
    """beta, se, t (or F) and p of each pair.

    Parameters
    ----------
    model : {"linear", "anova", "interaction"}
    z : array of shape (n_columns, n_pairs)
    share : array of shape (n_pairs,)
        ``D`` of each pair.
    df, n_terms : arrays of shape (n_pairs,)
        The variant's residual degrees of freedom and tested columns.
    residual_norm : array of shape (n_pairs,)
        The phenotype's residual norm ``s``.
    beta_scale : array of shape (n_pairs,)

    Returns
    -------
    dict of str to array of shape (n_pairs,)
        ``beta``, ``se``, ``t``, ``F`` (ANOVA only) and ``p_value``.
    """
    explained_total = np.einsum("ih,ih->h", z, z)
    unexplained = np.maximum(share - explained_total, 0.0)
    dff = df.astype(np.float64)
    if model == "anova":
        with np.errstate(divide="ignore", invalid="ignore"):
            f = (explained_total / n_terms) / (unexplained / dff)
        nan = np.full(f.shape, np.nan)
        return {"beta": nan, "se": nan.copy(), "t": nan.copy(), "F": f,
                "p_value": f_p_value(f, n_terms.astype(np.float64), dff)}
    tested = z[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = tested * np.sqrt(dff / unexplained)
    scale = residual_norm * beta_scale
    beta = tested * scale
    se = scale * np.sqrt(unexplained / dff)
    return {"beta": beta, "se": se, "t": t, "p_value": t_p_value(t, dff)}
