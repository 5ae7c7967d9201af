"""Designs from formulas: names, reference levels, terms, and formulas that must not run code."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

import manylm
from manylm.design import coefficient_aliases, resolve_tests


@pytest.fixture
def samples() -> pd.DataFrame:
    return pd.DataFrame(
        {"cancer": ["Normal", "Biopsy", "Cancer", "Cancer", "Normal", "Biopsy"],
         "batch": [1, 2, 1, 2, 1, 2], "age": [30.0, 40, 50, 60, 70, 80]},
        index=[f"S{i}" for i in range(6)],
    )


def test_names_terms_and_reference(samples) -> None:
    design = manylm.design_matrix("~ cancer + C(batch) + age", samples,
                                  reference={"cancer": "Normal"})
    assert design.coefficient_names == ["Intercept", "cancer[T.Biopsy]", "cancer[T.Cancer]",
                                        "C(batch)[T.2]", "age"]
    assert design.terms["cancer"] == ["cancer[T.Biopsy]", "cancer[T.Cancer]"]
    other = manylm.design_matrix("~ cancer", samples, reference={"cancer": "Cancer"})
    assert other.coefficient_names == ["Intercept", "cancer[T.Biopsy]", "cancer[T.Normal]"]
    numeric_ref = manylm.design_matrix("~ C(batch)", samples, reference={"batch": "2"})
    assert numeric_ref.coefficient_names == ["Intercept", "C(batch)[T.1]"]


def test_unknown_reference_level(samples) -> None:
    with pytest.raises(manylm.DesignError, match="'Tumour' is not a value of column 'cancer'"):
        manylm.design_matrix("~ cancer", samples, reference={"cancer": "Tumour"})


def test_aliases_and_terms() -> None:
    names = ["Intercept", "cancer[T.Cancer]"]
    aliases = coefficient_aliases(names)
    assert aliases["cancer[Cancer]"] == "cancer[T.Cancer]"
    assert aliases["cancerCancer"] == "cancer[T.Cancer]"
    assert resolve_tests(["cancer"], names, {"cancer": ["cancer[T.Cancer]"]}) == [
        "cancer[T.Cancer]"]


@pytest.mark.parametrize(
    "formula",
    [
        "~ {__import__('os').system('touch pwned')}",
        "~ __import__('os').system('touch pwned')",
        "~ {open('pwned', 'w')}",
        "~ age + {exec('import os')}",
        "~ np.lib.npyio.savetxt('pwned', age)",
        "~ {(lambda: 1)()}",
        "~ age.__class__",
        "~ {[x for x in age]}",
        "~ C(batch)[0]",
    ],
)
def test_formulas_never_run_code(samples, formula: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(manylm.FormulaError):
        manylm.design_matrix(formula, samples)
    assert not os.path.exists("pwned")


def test_allowed_transforms(samples) -> None:
    design = manylm.design_matrix("~ log(age) + scale(age) + np.sqrt(age) + I(age ** 2)", samples)
    np.testing.assert_allclose(design.matrix[:, 1], np.log(samples["age"]))
    assert design.n_coefficients == 5


def test_contrast_parsing_is_linear_and_safe() -> None:
    names = ["Intercept", "cancer[T.Biopsy]", "cancer[T.Cancer]"]
    matrix = manylm.contrast_matrix(["CvB = cancer[Cancer] - cancer[Biopsy]",
                                     "mid = (cancer[Cancer] + cancer[Biopsy]) / 2"], names)
    np.testing.assert_array_equal(matrix["CvB"], [0, -1, 1])
    np.testing.assert_array_equal(matrix["mid"], [0, 0.5, 0.5])
    for bad in ["x = cancer[Cancer] * cancer[Biopsy]", "x = __import__('os')", "x = 3"]:
        with pytest.raises(manylm.ContrastError):
            manylm.contrast_matrix([bad], names)
