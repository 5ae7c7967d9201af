"""Rows with missing values fitted where they lie equal fit_weighted of their copies."""

from __future__ import annotations

import numpy as np
import pytest

from manylm.fit.weighted import fit_observed, fit_weighted


@pytest.mark.parametrize("sample_weights", [None, "some"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_observed_equals_fit_weighted(sample_weights: str | None, dtype: type) -> None:
    rng = np.random.default_rng(3)
    design = np.column_stack([np.ones(12), np.repeat([0.0, 1.0], 6), rng.uniform(size=12)])
    y = (rng.standard_normal((400, 12)) + 5).astype(dtype)
    y[rng.uniform(size=y.shape) < 0.1] = np.nan
    y[7, :10] = np.nan  # fewer observations than coefficients
    rows = np.flatnonzero(np.isnan(y).any(axis=1))
    base = None if sample_weights is None else rng.uniform(0.2, 2, 12)
    fit = fit_observed(y, rows, design, sample_weights=base, centre_rows=True)
    assert fit is not None
    subset = y[rows].astype(np.float64)
    weights = np.where(np.isnan(subset), 0.0, 1.0 if base is None else base[None, :])
    expected = fit_weighted(subset, weights, design, centre_rows=True)
    for name in ("coefficients", "stdev_unscaled", "residual_variance", "df_residual", "mean"):
        np.testing.assert_allclose(getattr(fit, name), getattr(expected, name), rtol=1e-12,
                                   equal_nan=True, err_msg=name)


def test_fit_observed_leaves_infinite_values_to_the_caller() -> None:
    y = np.ones((3, 5))
    y[1, 2] = np.inf
    y[2, 0] = np.nan
    assert fit_observed(y, np.array([1, 2]), np.ones((5, 1)), centre_rows=True) is None
