"""Loading the committed R references and comparing with them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

REFERENCE = Path(__file__).parent / "reference"


def read_reference(name: str) -> pd.DataFrame:
    """A table from tests/reference/ (first column is the index; NA/NaN/Inf understood)."""
    path = REFERENCE / name
    # round_trip: R wrote 17 significant digits; read back exactly R's doubles.
    return pd.read_csv(path, sep="\t", index_col=0, na_values=["NA", "NaN"],
                       keep_default_na=False, dtype={0: str}, float_precision="round_trip")


def read_scalars(case: str) -> dict[str, float]:
    table = read_reference(f"limma/{case}.scalars.tsv")
    return {str(k): float(v) for k, v in table["value"].items()}


def assert_close(ours: object, reference: object, rtol: float, *, what: str = "") -> None:
    """Relative agreement, with an absolute floor of rtol times the column's median size.

    NaN must match NaN (limma reports NA where a statistic does not exist).
    """
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    assert np.array_equal(nan_a, nan_b), (
        f"{what}: NaN pattern differs at {np.flatnonzero(nan_a != nan_b)[:10]}"
    )
    finite = ~nan_b & np.isfinite(b)
    assert np.array_equal(np.isinf(a), np.isinf(b)), f"{what}: infinities differ"
    if not finite.any():
        return
    floor = rtol * float(np.median(np.abs(b[finite])))
    np.testing.assert_allclose(a[finite], b[finite], rtol=rtol, atol=floor, err_msg=what)
