"""Bad input to the Python API: clear errors that say what and where."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import manylm


@pytest.fixture
def samples() -> pd.DataFrame:
    return pd.DataFrame({"group": ["A", "A", "B", "B", "C", "C"], "age": [1.0, 2, 3, 4, 5, 6]},
                        index=[f"S{i}" for i in range(6)])


@pytest.fixture
def expression(samples: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(20, 6)), index=[f"g{i}" for i in range(20)],
                        columns=samples.index)


def test_design_and_sample_count_mismatch(expression) -> None:
    with pytest.raises(manylm.DesignError, match=r"6 samples .* 4 rows"):
        manylm.lm_fit(expression.to_numpy(), np.ones((4, 1)))


def test_infinite_value_names_feature_and_sample(expression, samples) -> None:
    expression.iloc[3, 2] = np.inf
    with pytest.raises(manylm.DataError, match="'g3', sample 'S2'"):
        manylm.lm_fit(expression, "~ group", samples=samples)


def test_non_numeric_values(expression, samples) -> None:
    expression["S1"] = expression["S1"].astype(str)
    with pytest.raises(manylm.DataError, match="non-numeric columns: S1"):
        manylm.lm_fit(expression, "~ group", samples=samples)


def test_formula_with_missing_column_lists_available(expression, samples) -> None:
    with pytest.raises(manylm.FormulaError, match=r"'sex'.*Available columns: 'group', 'age'"):
        manylm.lm_fit(expression, "~ group + sex", samples=samples)


def test_unknown_coefficient_lists_known(expression, samples) -> None:
    result = manylm.lm_fit(expression, "~ group", samples=samples).ebayes()
    with pytest.raises(manylm.ContrastError, match=r"'group\[D\]'.*group\[T.B\]"):
        result.top_table("group[D]")
    with pytest.raises(manylm.ContrastError, match="not a coefficient"):
        manylm.contrasts_fit(result.fit, ["x = group[D] - group[B]"])


def test_non_estimable_coefficient_of_interest(expression, samples) -> None:
    samples["twice"] = samples["age"] * 2
    with pytest.warns(manylm.ManylmWarning, match="not estimable.*twice"):
        fit = manylm.lm_fit(expression, "~ age + twice", samples=samples)
    with pytest.raises(manylm.EstimabilityError, match="twice cannot be estimated"):
        fit.ebayes().top_table("twice")


def test_fewer_samples_than_coefficients(expression, samples) -> None:
    x = np.random.default_rng(1).normal(size=(6, 7))
    with pytest.raises(manylm.DesignError, match="7 coefficients but only 6 samples"):
        manylm.lm_fit(expression, x)


def test_no_residual_df(expression, samples) -> None:
    fit = manylm.lm_fit(expression, np.eye(6))
    with pytest.raises(manylm.InputError, match="No residual degrees of freedom"):
        fit.ebayes()


@pytest.mark.parametrize("axis", ["feature", "sample"])
def test_duplicate_ids(expression, samples, axis: str) -> None:
    if axis == "feature":
        expression.index = ["g0"] * 2 + list(expression.index[2:])
    else:
        expression.columns = ["S0", "S0", *expression.columns[2:]]
    with pytest.raises(manylm.DataError, match=f"Duplicate {axis} IDs: 'g0'|Duplicate {axis} IDs"):
        manylm.lm_fit(expression, np.ones((6, 1)))


def test_samples_missing_a_covariate_are_dropped_with_a_warning(expression, samples) -> None:
    samples.loc["S5", "age"] = np.nan
    with pytest.warns(manylm.ManylmWarning, match="1 sample.*age.*S5"):
        fit = manylm.lm_fit(expression, "~ group + age", samples=samples)
    assert fit.design.sample_ids == ["S0", "S1", "S2", "S3", "S4"]
    assert fit.df_residual[0] == 5 - 4


def test_bad_weights(expression, samples) -> None:
    weights = np.ones(expression.shape)
    weights[2, 4] = -1
    with pytest.raises(manylm.DataError, match="feature 'g2', sample 'S4'"):
        manylm.lm_fit(expression, "~ group", samples=samples, weights=weights)


def test_bad_options(expression, samples) -> None:
    fit = manylm.lm_fit(expression, "~ group", samples=samples)
    with pytest.raises(manylm.InputError, match="'proportion' parameter must be in"):
        fit.ebayes(proportion=2)
    with pytest.raises(manylm.InputError, match="sort_by"):
        fit.ebayes().top_table("group[B]", sort_by="size")
    with pytest.raises(manylm.InputError, match="adjust"):
        manylm.p_adjust([0.1, 0.2], "magic")


def test_labelled_weights_are_matched_by_id(expression, samples) -> None:
    rng = np.random.default_rng(3)
    weights = pd.DataFrame(rng.gamma(2, 1, expression.shape), index=expression.index,
                           columns=expression.columns)
    reference = manylm.lm_fit(expression, "~ group", samples=samples, weights=weights)
    shuffled = weights.iloc[::-1, ::-1]
    again = manylm.lm_fit(expression, "~ group", samples=samples, weights=shuffled)
    np.testing.assert_allclose(again.coefficients, reference.coefficients, rtol=1e-12)
    with pytest.raises(manylm.DataError, match=r"no column or row for sample.*S5"):
        manylm.lm_fit(expression, "~ group", samples=samples, weights=weights.drop(columns="S5"))
