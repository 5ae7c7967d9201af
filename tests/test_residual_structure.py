"""Residual principal components and their association with covariates, against R.

The reference (tests/reference/sva.R) takes the residuals of ``lm.fit(~ cancer)`` on the
bladderbatch set, ``prcomp(t(residuals))``, and ``summary(lm(PC ~ variable))`` for batch,
outcome, cancer (factors) and the two irw surrogate variables (numeric). Agreement: variance
fractions and R^2 to 1e-9 (relative), p-values to 1e-7 (relative), scores up to sign to 1e-7.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import manylm
from manylm.confounders.residual_structure import ResidualStructure, residual_components
from manylm.errors import InputError
from manylm.io import example_paths, read_matrix, read_sample_sheet
from reference_data import read_reference


@pytest.fixture(scope="module")
def structure() -> ResidualStructure:
    expression_path, samples_path = example_paths()
    expression, sheet = read_matrix(expression_path), read_sample_sheet(samples_path)
    fit = manylm.lm_fit(expression, "~ cancer", samples=sheet, keep_residuals=True)
    covariates = pd.DataFrame({"batch": sheet["batch"].astype("category"),
                               "outcome": sheet["outcome"], "cancer": sheet["cancer"]})
    surrogates = read_reference("sva/irw_cancer_sv.tsv")
    return residual_components(fit.residuals, covariates, n_components=10,
                               surrogates=surrogates)


def test_variance_and_scores_match_prcomp(structure: ResidualStructure) -> None:
    variance = read_reference("sva/residual_variance.tsv")["variance_explained"]
    assert list(structure.variance_explained.index) == list(variance.index)
    np.testing.assert_allclose(structure.variance_explained, variance, rtol=1e-9)
    scores = read_reference("sva/residual_scores.tsv")
    assert list(structure.scores.index) == list(scores.index)
    signs = np.sign(np.sum(structure.scores.to_numpy() * scores.to_numpy(), axis=0))
    np.testing.assert_allclose(structure.scores.to_numpy() * signs, scores, rtol=1e-7,
                               atol=1e-7 * float(np.abs(scores.to_numpy()).max()))


def test_r_squared_and_p_match_lm(structure: ResidualStructure) -> None:
    r_squared = read_reference("sva/residual_r_squared.tsv")
    p_values = read_reference("sva/residual_p_values.tsv")
    assert list(structure.r_squared.columns) == ["batch", "outcome", "cancer", "sv1", "sv2"]
    assert list(structure.r_squared.index) == list(r_squared.index)
    np.testing.assert_allclose(structure.r_squared, r_squared, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(structure.p_values, p_values, rtol=1e-7, atol=0)


def test_factor_numeric_and_missing_values() -> None:
    rng = np.random.default_rng(1)
    n = 30
    group = np.repeat(["a", "b", "c"], 10)
    age = rng.normal(50, 10, n)
    pattern = np.where(group == "b", 2.0, 0.0) + 0.5 * (age - 50) / 10
    residuals = np.outer(rng.normal(size=200), pattern) + rng.normal(scale=0.2, size=(200, n))
    samples = [f"s{i}" for i in range(n)]
    frame = pd.DataFrame(residuals, columns=samples)
    with_missing = age.copy()
    with_missing[:3] = np.nan
    covariates = pd.DataFrame({"group": group, "age": with_missing, "same": "x",
                               "coded": pd.Categorical(np.tile([1, 2, 3], 10))},
                              index=samples)
    # Rows in any order: they are matched to the residuals' columns by sample ID.
    result = residual_components(frame, covariates.iloc[::-1], n_components=3)
    assert result.scores.shape == (n, 3)
    assert result.variance_explained.iloc[0] > 0.5
    assert result.r_squared.loc["PC1", "group"] > 0.5
    assert 0 < result.r_squared.loc["PC1", "age"] < 1
    # One level: nothing to explain with, no test.
    assert result.r_squared.loc["PC1", "same"] == 0 and np.isnan(result.p_values.loc["PC1",
                                                                                      "same"])
    # The same data as a bare array, covariates in sample order.
    bare = residual_components(residuals, covariates.reset_index(drop=True), n_components=3)
    np.testing.assert_allclose(bare.r_squared, result.r_squared, rtol=1e-10)


def test_bad_covariates() -> None:
    residuals = pd.DataFrame(np.random.default_rng(0).normal(size=(20, 5)),
                             columns=list("abcde"))
    with pytest.raises(InputError, match="no row in covariates: e"):
        residual_components(residuals, pd.DataFrame({"x": [1, 2, 3, 4]}, index=list("abcd")))
    with pytest.raises(InputError, match="4 rows for 5 samples"):
        residual_components(residuals.to_numpy(), pd.DataFrame({"x": [1, 2, 3, 4]}))
    with pytest.raises(InputError, match="n_components"):
        residual_components(residuals, pd.DataFrame({"x": range(5)}, index=list("abcde")),
                            n_components=0)
