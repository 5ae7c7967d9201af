"""Checks on count matrices, with errors that say where the problem is."""

from __future__ import annotations

import numpy as np
import pandas as pd

from manylm.errors import DataError

__all__ = ["check_counts"]


def check_counts(counts: pd.DataFrame, *, source: str = "the count matrix") -> None:
    """Raise unless every value is a non-negative whole number and every library is non-empty."""
    values = counts.to_numpy(dtype=np.float64)
    problems = [
        (np.isnan(values), "is missing", "counts cannot be missing: use 0 for no reads"),
        (values < 0, "is negative", "counts must be >= 0"),
        (np.isfinite(values) & (values != np.round(values)), "is not a whole number",
         "give raw counts (integers), not normalised or transformed values"),
        (np.isinf(values), "is infinite", "counts must be finite"),
    ]
    for bad, what, fix in problems:
        if bad.any():
            row, col = (int(v[0]) for v in np.nonzero(bad))
            raise DataError(
                f"{source}: the count for feature {counts.index[row]!r}, sample "
                f"{counts.columns[col]!r} ({values[row, col]}) {what}; {fix}. (--counts treats "
                "the matrix as raw read counts.)"
            )
    empty = values.sum(axis=0) == 0
    if empty.any():
        names = [str(s) for s in counts.columns[empty]]
        raise DataError(
            f"{source}: library size zero (no reads) for sample(s) {', '.join(names[:10])}; "
            "remove those samples."
        )
