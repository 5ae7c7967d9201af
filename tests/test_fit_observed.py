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


@pytest.mark.parametrize("centre_rows", [True, False])
def test_one_pass_kernel_equals_the_batched_normal_equations(centre_rows: bool) -> None:
    """The compiled per-row fit (tiles of rows on SIMD lanes) against the batched NumPy path
    (taken when residuals are kept) and, for full-rank rows, against least squares."""
    rng = np.random.default_rng(8)
    n = 14
    indicator = np.zeros(n)
    indicator[[2, 9]] = 1.0  # estimable only where samples 2 or 9 are observed
    columns = [np.repeat([0.0, 1.0], n // 2), rng.uniform(size=n), indicator]
    design = np.column_stack(([np.ones(n)] if centre_rows else []) + columns)
    y = rng.standard_normal((53, n)) * 2 + 3  # 53 rows: three full tiles and a partial one
    y[rng.uniform(size=y.shape) < 0.15] = np.nan
    y[4, [2, 9]] = np.nan  # the indicator column is not estimable for row 4
    y[11] = design @ np.arange(1.0, design.shape[1] + 1)  # a perfect fit: RSS from residuals
    y[11, 3] = np.nan
    y[20, :12] = np.nan  # fewer observations than coefficients
    weights = np.where(np.isnan(y), 0.0, rng.uniform(0.5, 2.0, y.shape))
    fit = fit_weighted(y, weights, design, centre_rows=centre_rows)
    batched = fit_weighted(y, weights, design, centre_rows=centre_rows, keep_residuals=True)
    for name in ("coefficients", "stdev_unscaled", "residual_variance", "df_residual", "mean"):
        np.testing.assert_allclose(getattr(fit, name), getattr(batched, name), rtol=1e-10,
                                   atol=1e-12, equal_nan=True, err_msg=name)
    assert np.isnan(fit.coefficients[4, -1]) and np.isfinite(fit.coefficients[4, :-1]).all()
    assert fit.residual_variance[11] < 1e-20
    for row in range(y.shape[0]):
        keep = weights[row] > 0
        if np.linalg.matrix_rank(design[keep]) < design.shape[1] or keep.sum() <= design.shape[1]:
            continue
        root = np.sqrt(weights[row, keep])
        expected = np.linalg.lstsq(design[keep] * root[:, None], y[row, keep] * root,
                                   rcond=None)[0]
        np.testing.assert_allclose(fit.coefficients[row], expected, rtol=1e-9, atol=1e-9)
