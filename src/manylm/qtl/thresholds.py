"""From a p-value threshold to a threshold on explained variance, and back to p-values.

Every genotype test of a scan (the t of one genotype column, or the F of several) is a
function of two sums of squares of the covariate-adjusted phenotype: what the tested
column(s) explain (``explained``) and what is left once the other genotype columns are
removed (``available``; the whole residual sum of squares for a single column). With ``j``
tested columns and ``df`` residual degrees of freedom,

    F = (explained / j) / ((available - explained) / df),   t^2 = F when j = 1,

and the p-value is the regularised incomplete beta function ``I_x(df / 2, j / 2)`` at
``x = 1 - explained / available``. So ``p <= p_threshold`` exactly when
``explained >= fraction * available``, with ``fraction = 1 - I^-1(df / 2, j / 2, p_threshold)``:
the threshold is converted once per (df, j) and a whole block of pairs is screened with one
multiply and one compare, as Matrix eQTL (Shabalin 2012, Bioinformatics 28:1353) converts its
p threshold into a threshold on the correlation. p-values are then computed only for the pairs
that pass, with ``scipy.special.stdtr`` (t) or ``fdtrc`` (F), as R's ``pt`` / ``pf``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import special

from manylm.moderate.student_t import student_t_sf

__all__ = ["explained_fraction_threshold", "f_p_value", "t_p_value"]


def explained_fraction_threshold(
    p_threshold: float, df: NDArray[np.integer], n_terms: NDArray[np.integer]
) -> NDArray[np.float64]:
    """Smallest ``explained / available`` whose test has ``p <= p_threshold``.

    Parameters
    ----------
    p_threshold : float
        In [0, 1]. 0 lets nothing pass, 1 lets every pair pass.
    df : array of int, shape (n,)
        Residual degrees of freedom of each test (> 0).
    n_terms : array of int, shape (n,)
        Genotype columns tested together (1 for a t test).

    Returns
    -------
    array of float64, shape (n,)
        The fraction, computed once per distinct (df, n_terms) pair. Above 1 (never reached)
        when ``p_threshold`` is 0.
    """
    df = np.asarray(df, dtype=np.int64)
    n_terms = np.asarray(n_terms, dtype=np.int64)
    if p_threshold <= 0:
        return np.full(df.shape, 2.0)
    if p_threshold >= 1:
        return np.zeros(df.shape)
    keys = np.stack([df, n_terms], axis=-1).reshape(-1, 2)
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    # x = betaincinv(df/2, j/2, p) is accurate for tiny p (1 - p would round to 1)
    x = special.betaincinv(unique[:, 0] / 2.0, unique[:, 1] / 2.0, p_threshold)
    return np.asarray(1.0 - x, dtype=np.float64)[inverse.reshape(df.shape)]


def t_p_value(t: NDArray[np.floating], df: NDArray[np.floating]) -> NDArray[np.float64]:
    """Two-sided p-value of Student t statistics, as R's ``2 * pt(-abs(t), df)``.

    ``scipy.special.stdtr`` split over the cores for long vectors.
    """
    return np.asarray(2.0 * student_t_sf(np.abs(t), df), dtype=np.float64)


def f_p_value(f: NDArray[np.floating], df1: NDArray[np.floating],
              df2: NDArray[np.floating]) -> NDArray[np.float64]:
    """Upper-tail p-value of F statistics, as R's ``pf(f, df1, df2, lower.tail = FALSE)``."""
    return np.asarray(special.fdtrc(df1, df2, f), dtype=np.float64)
