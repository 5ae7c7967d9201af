"""Bad input to manylm.qtl.scan: clear errors naming what is wrong, and counted skips."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from manylm.errors import DataError, DesignError, InputError, ManylmWarning
from manylm.qtl import scan


@pytest.fixture()
def inputs() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(3)
    samples = [f"S{i}" for i in range(30)]
    genotypes = pd.DataFrame(rng.binomial(2, 0.3, (6, 30)).astype(float),
                             index=[f"v{i}" for i in range(6)], columns=samples)
    phenotypes = pd.DataFrame(rng.normal(size=(4, 30)), index=[f"p{i}" for i in range(4)],
                              columns=samples)
    covariates = pd.DataFrame({"age": rng.normal(50, 5, 30), "sex": np.tile([0.0, 1.0], 15)},
                              index=samples)
    return {"genotypes": genotypes, "phenotypes": phenotypes, "covariates": covariates}


def test_samples_missing_from_genotypes_are_listed(inputs) -> None:
    genotypes = inputs["genotypes"].drop(columns=["S3", "S7"])
    with pytest.raises(DesignError, match=r"2 sample\(s\) have no genotypes in .*: 'S3', 'S7'"):
        scan(genotypes, inputs["phenotypes"], inputs["covariates"])


def test_samples_missing_from_genotypes_and_covariates_are_listed_together(inputs) -> None:
    with pytest.raises(DesignError, match=r"no genotypes in .*'S9'; 2 sample\(s\) have no "
                       r"covariates: 'S0', 'S1'"):
        scan(inputs["genotypes"].drop(columns=["S9"]), inputs["phenotypes"],
             inputs["covariates"].iloc[2:])


def test_monomorphic_variants_are_skipped_and_counted(inputs) -> None:
    genotypes = inputs["genotypes"].copy()
    genotypes.loc["v1"] = 2.0
    genotypes.loc["v4"] = np.where(np.arange(30) < 10, np.nan, 1.0)  # constant where observed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = scan(genotypes, inputs["phenotypes"], inputs["covariates"], p_threshold=1.0)
    assert result.variant_status["monomorphic"] == 2
    assert result.n_tests["trans"] == 4 * 4
    assert set(result.table["variant"]) == {"v0", "v2", "v3", "v5"}
    assert any("2 monomorphic" in str(w.message) for w in caught
               if issubclass(w.category, ManylmWarning))


def test_maf_filter(inputs) -> None:
    genotypes = inputs["genotypes"].copy()
    genotypes.loc["v2"] = 0.0
    genotypes.loc["v2", "S1"] = 1.0  # MAF 1/60
    result = scan(genotypes, inputs["phenotypes"], inputs["covariates"], p_threshold=1.0,
                  maf=0.05)
    assert result.variant_status["below_maf"] == 1
    assert "v2" not in set(result.table["variant"])


def test_collinear_covariates_are_named(inputs) -> None:
    covariates = inputs["covariates"].assign(age2=lambda d: 2 * d["age"] + d["sex"])
    with pytest.raises(DesignError, match=r"'age2' = a combination of .*'age', 'sex'"):
        scan(inputs["genotypes"], inputs["phenotypes"], covariates)


def test_dosages_outside_0_2_are_refused(inputs) -> None:
    genotypes = inputs["genotypes"].copy()
    genotypes.loc["v3", "S5"] = 3.0
    with pytest.raises(DataError, match="variant 'v3', sample 'S5': dosage 3 is outside"):
        scan(genotypes, inputs["phenotypes"], inputs["covariates"])


def test_missing_phenotypes_are_named(inputs) -> None:
    phenotypes = inputs["phenotypes"].copy()
    phenotypes.loc["p2", "S4"] = np.nan
    with pytest.raises(DataError, match="'p2'"):
        scan(inputs["genotypes"], phenotypes, inputs["covariates"])


def test_genotype_collinear_with_covariates_is_skipped(inputs) -> None:
    genotypes = inputs["genotypes"].copy()
    genotypes.loc["v0"] = inputs["covariates"]["sex"].to_numpy()
    result = scan(genotypes, inputs["phenotypes"], inputs["covariates"], p_threshold=1.0)
    assert result.variant_status["collinear_with_covariates"] == 1


@pytest.mark.parametrize(("options", "message"), [
    ({"p_threshold": 2}, "'p_threshold' parameter must be a number in"),
    ({"model": "logistic"}, "'model' parameter must be one of"),
    ({"model": "interaction"}, "needs 'interaction'"),
    ({"interaction": "age"}, "needs model='interaction'"),
    ({"model": "interaction", "interaction": "height"}, "'height' is not a covariate"),
    ({"missing": "drop"}, "'missing' parameter"),
    ({"dtype": "float16"}, "'dtype' parameter"),
    ({"cis_window": 1000}, "needs phenotype_positions"),
    ({"maf": 0.7}, "'maf' parameter"),
])
def test_options_are_checked(inputs, options, message) -> None:
    with pytest.raises(InputError, match=message):
        scan(inputs["genotypes"], inputs["phenotypes"], inputs["covariates"], **options)


def test_too_many_covariates(inputs) -> None:
    rng = np.random.default_rng(0)
    covariates = pd.DataFrame(rng.normal(size=(30, 28)), index=inputs["covariates"].index)
    with pytest.raises(DesignError, match="no residual degrees of freedom"):
        scan(inputs["genotypes"], inputs["phenotypes"], covariates)


def test_nothing_half_written_on_error(inputs, tmp_path) -> None:
    out = tmp_path / "pairs.tsv"
    out.write_text("old\n")
    genotypes = inputs["genotypes"].copy()
    genotypes.iloc[5, 0] = -1.0  # the last block fails after the first was spooled
    with pytest.raises(DataError):
        scan(genotypes, inputs["phenotypes"], inputs["covariates"], p_threshold=1.0, out=out,
             block_variants=2)
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.tsv"]
