"""Methylation beta values to M-values (Du et al. 2010, BMC Bioinformatics 11:587)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from manylm.errors import DataError

__all__ = ["BETA_OFFSET", "beta_to_m"]

#: Added to beta and 1 - beta so that 0 and 1 give finite M-values (|M| <= about 20).
BETA_OFFSET = 1e-6


def beta_to_m(beta: pd.DataFrame, *, offset: float = BETA_OFFSET,
              source: str = "the beta matrix") -> pd.DataFrame:
    """M = log2((beta + offset) / (1 - beta + offset)); beta must lie in [0, 1] (NaN allowed)."""
    values = beta.to_numpy(dtype=np.float64)
    bad = ~np.isnan(values) & ((values < 0) | (values > 1))
    if bad.any():
        row, col = (int(v[0]) for v in np.nonzero(bad))
        raise DataError(
            f"{source}: beta value {values[row, col]} for feature {beta.index[row]!r}, sample "
            f"{beta.columns[col]!r} is outside [0, 1] ({int(bad.sum())} such value(s)); beta "
            "values are methylated / (methylated + unmethylated) fractions."
        )
    m_values = np.log2((values + offset) / (1 - values + offset))
    return pd.DataFrame(m_values, index=beta.index, columns=beta.columns)
