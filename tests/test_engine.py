"""The engine's invariants: results do not depend on block size, threads or input type."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import manylm


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(1)
    samples = pd.DataFrame(
        {"group": np.repeat(["A", "B"], 6), "batch": np.tile(["x", "y", "z"], 4),
         "age": rng.uniform(20, 80, 12)},
        index=[f"S{i}" for i in range(12)],
    )
    y = rng.normal(8, 1, (500, 12))
    y[rng.random(y.shape) < 0.03] = np.nan
    y[7] = np.nan
    expression = pd.DataFrame(y, index=[f"g{i}" for i in range(500)], columns=samples.index)
    return expression, samples


FORMULA = "~ group + batch + age"


@pytest.mark.parametrize("block_rows", [1, 7, 64, 499])
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_results_do_not_depend_on_blocks(data, block_rows: int, n_jobs: int) -> None:
    expression, samples = data
    whole = manylm.lm_fit(expression, FORMULA, samples=samples, block_rows=10_000, n_jobs=1)
    blocked = manylm.lm_fit(expression, FORMULA, samples=samples, block_rows=block_rows,
                            n_jobs=n_jobs)
    for name in ("coefficients", "stdev_unscaled", "residual_variance", "df_residual", "mean"):
        np.testing.assert_allclose(getattr(blocked, name), getattr(whole, name), rtol=1e-12,
                                   atol=1e-14, equal_nan=True, err_msg=name)
    a = whole.ebayes().top_table("group[B]", sort_by="none")
    b = blocked.ebayes().top_table("group[B]", sort_by="none")
    pd.testing.assert_frame_equal(a, b, rtol=1e-10)


def test_numpy_and_float32_inputs(data) -> None:
    expression, samples = data
    design = manylm.design_matrix(FORMULA, samples)
    reference = manylm.lm_fit(expression, design)
    from_numpy = manylm.lm_fit(expression.to_numpy(), design)
    np.testing.assert_array_equal(from_numpy.coefficients, reference.coefficients)
    single = manylm.lm_fit(expression.astype(np.float32), design)
    np.testing.assert_allclose(single.coefficients, reference.coefficients, rtol=1e-5,
                               atol=1e-5, equal_nan=True)
    in_float32 = manylm.lm_fit(expression.astype(np.float32), design, dtype=np.float32)
    assert in_float32.coefficients.dtype == np.float32
    np.testing.assert_allclose(in_float32.coefficients, reference.coefficients, rtol=1e-3,
                               atol=1e-4, equal_nan=True)


def test_anndata_input(data) -> None:
    anndata = pytest.importorskip("anndata")
    expression, samples = data
    adata = anndata.AnnData(X=expression.T.to_numpy(), obs=samples,
                            var=pd.DataFrame(index=expression.index))
    fit = manylm.lm_fit(adata, FORMULA)
    reference = manylm.lm_fit(expression, FORMULA, samples=samples)
    np.testing.assert_array_equal(fit.coefficients, reference.coefficients)


def test_residuals_and_fitted_values(data) -> None:
    expression, samples = data
    fit = manylm.lm_fit(expression, FORMULA, samples=samples, keep_residuals=True)
    assert fit.residuals is not None and fit.fitted is not None
    total = fit.residuals + fit.fitted
    np.testing.assert_allclose(total.to_numpy(), expression.to_numpy(), atol=1e-10)
    rss = np.nansum(fit.residuals.to_numpy() ** 2, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = rss / fit.df_residual
    ok = fit.df_residual > 0
    np.testing.assert_allclose(expected[ok], fit.residual_variance[ok], rtol=1e-10)


def test_samples_matched_by_id_not_position(data) -> None:
    expression, samples = data
    shuffled = samples.sample(frac=1.0, random_state=3)
    a = manylm.lm_fit(expression, FORMULA, samples=samples)
    b = manylm.lm_fit(expression, FORMULA, samples=shuffled)
    np.testing.assert_allclose(a.coefficients, b.coefficients, rtol=1e-10, atol=1e-12,
                               equal_nan=True)


def test_large_mean_is_accurate() -> None:
    """Residual variance of 1e6 + small noise: no cancellation (DESIGN.md numerics)."""
    rng = np.random.default_rng(2)
    x = np.column_stack([np.ones(10), np.arange(10.0)])
    noise = rng.normal(0, 0.01, (3, 10))
    fit = manylm.lm_fit(1e6 + noise, x)
    small = manylm.lm_fit(noise, x)
    np.testing.assert_allclose(fit.residual_variance, small.residual_variance, rtol=1e-6)


def test_ordinary_statistics_match_textbook_ols() -> None:
    rng = np.random.default_rng(4)
    x = np.column_stack([np.ones(9), rng.normal(size=9), rng.normal(size=9)])
    y = rng.normal(size=(5, 9))
    result = manylm.ordinary_statistics(manylm.lm_fit(y, x))
    from scipy import stats

    for g in range(5):
        beta, rss, *_ = np.linalg.lstsq(x, y[g], rcond=None)
        s2 = rss[0] / 6
        se = np.sqrt(s2 * np.diag(np.linalg.inv(x.T @ x)))
        np.testing.assert_allclose(result.t[g], beta / se, rtol=1e-10)
        np.testing.assert_allclose(result.p_value[g], 2 * stats.t.sf(np.abs(beta / se), 6),
                                   rtol=1e-9)
