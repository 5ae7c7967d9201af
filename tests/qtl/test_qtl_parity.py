"""manylm.qtl.scan against R's lm() fitted pair by pair (tests/reference/qtl.R)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from manylm import design_matrix
from manylm.qtl import scan
from reference_data import assert_close, read_reference

RTOL = 1e-8


@pytest.fixture(scope="module")
def data() -> dict[str, pd.DataFrame]:
    pairs = read_reference("qtl/lm_pairs.tsv.gz").reset_index()
    return {
        "genotypes": read_reference("qtl/genotypes.tsv"),
        "phenotypes": read_reference("qtl/phenotypes.tsv"),
        "covariates": read_reference("qtl/covariates.tsv").T,
        "samples": read_reference("qtl/samples.tsv"),
        "pairs": pairs.set_index(["variant", "phenotype"]),
        "outcome": read_reference("qtl/lm_outcome.tsv"),
        "variant_positions": read_reference("qtl/variant_positions.tsv"),
        "phenotype_positions": read_reference("qtl/phenotype_positions.tsv"),
    }


def _joined(table: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Our columns, then R's, every R column prefixed ``r_`` (so names never collide)."""
    ours = table.set_index(["variant", "phenotype"])
    return ours.join(pairs.add_prefix("r_"), how="left")


def test_default_scan_matches_lm_complete_cases(data) -> None:
    result = scan(data["genotypes"], data["phenotypes"], data["covariates"], p_threshold=1.0)
    assert result.variant_status["monomorphic"] == 1  # rs011
    assert result.n_imputed == 1  # rs010: 40 missing calls > 32
    assert result.n_tests == {"trans": 39 * 15, "cis": 0}
    joined = _joined(result.table, data["pairs"])
    assert len(joined) == 39 * 15 and "rs011" not in joined.index.get_level_values(0)
    exact = joined.index.get_level_values(0) != "rs010"
    for ours, ref in (("beta", "r_beta"), ("se", "r_se"), ("t", "r_t"), ("p_value", "r_p")):
        assert_close(joined[ours][exact], joined[ref][exact], RTOL, what=ours)
    imputed = ~exact
    for ours, ref in (("beta", "r_beta_mean"), ("t", "r_t_mean"), ("p_value", "r_p_mean")):
        assert_close(joined[ours][imputed], joined[ref][imputed], RTOL, what=ours)
    assert_close(joined["adj_p_value"], joined["r_adj_default"], RTOL, what="BH")


def test_all_complete_cases_when_the_cap_allows(data) -> None:
    """rs009 drops batch3 in its complete cases: lm's df is one larger; so is ours."""
    result = scan(data["genotypes"], data["phenotypes"], data["covariates"], p_threshold=1.0,
                  max_missing_exact=60)
    assert result.n_imputed == 0
    joined = _joined(result.table, data["pairs"])
    for ours, ref in (("beta", "r_beta"), ("se", "r_se"), ("t", "r_t"), ("p_value", "r_p")):
        assert_close(joined[ours], joined[ref], RTOL, what=ours)


def test_mean_imputation_matches_lm_on_imputed_dosages(data) -> None:
    result = scan(data["genotypes"], data["phenotypes"], data["covariates"], p_threshold=1.0,
                  missing="mean")
    joined = _joined(result.table, data["pairs"])
    for ours, ref in (("beta", "r_beta_mean"), ("se", "r_se_mean"), ("t", "r_t_mean"),
                      ("p_value", "r_p_mean"), ("adj_p_value", "r_adj_mean")):
        assert_close(joined[ours], joined[ref], RTOL, what=ours)


def test_interaction_matches_lm(data) -> None:
    result = scan(data["genotypes"], data["phenotypes"], data["covariates"], p_threshold=1.0,
                  model="interaction", interaction="age", max_missing_exact=60)
    assert result.variant_status["interaction_not_estimable"] == 1  # rs012: one carrier
    joined = _joined(result.table, data["pairs"])
    assert len(joined) == 38 * 15
    assert data["pairs"].loc["rs012", "t_gxage"].isna().all()  # lm: g:age aliased
    for ours, ref in (("beta", "r_beta_gxage"), ("se", "r_se_gxage"), ("t", "r_t_gxage"),
                      ("p_value", "r_p_gxage")):
        assert_close(joined[ours], joined[ref], RTOL, what=ours)
    strongest = joined.loc["rs007"].sort_values("p_value").index[0]
    assert strongest == "gene07"


def test_anova_matches_lm_f_test(data) -> None:
    result = scan(data["genotypes"], data["phenotypes"], data["covariates"], p_threshold=1.0,
                  model="anova", max_missing_exact=60)
    joined = _joined(result.table, data["pairs"])
    assert joined[["beta", "se", "t"]].isna().all().all()
    assert_close(joined["F"], joined["r_F_anova"], RTOL, what="F")
    assert_close(joined["p_value"], joined["r_p_anova"], RTOL, what="p")
    assert (joined["df_genotype"] == joined["r_df1_anova"]).all()
    assert (joined.loc["rs012", "df_genotype"] == 1).all()  # a single carrier: two classes


def test_cis_and_trans_are_separate_families(data) -> None:
    result = scan(data["genotypes"], data["phenotypes"], data["covariates"], p_threshold=1.0,
                  cis_window=25_000, variant_positions=data["variant_positions"],
                  phenotype_positions=data["phenotype_positions"])
    pairs = data["pairs"]
    tested = pairs.index.get_level_values(0) != "rs011"
    n_cis = int(pairs["cis"][tested].sum())
    assert result.n_tests == {"cis": n_cis, "trans": int(tested.sum()) - n_cis}
    joined = _joined(result.table, pairs)
    assert ((joined["region"] == "cis") == (joined["r_cis"] == 1)).all()
    assert_close(joined["adj_p_value"], joined["r_adj_cis_family"], RTOL, what="BH per family")


def test_threshold_writes_exactly_the_passing_pairs_with_exact_bh(data) -> None:
    threshold = 0.01
    result = scan(data["genotypes"], data["phenotypes"], data["covariates"],
                  p_threshold=threshold)
    pairs = data["pairs"]
    expected = pairs.index[(pairs["p_default"] <= threshold)
                           & (pairs.index.get_level_values(0) != "rs011")]
    ours = result.table.set_index(["variant", "phenotype"])
    assert set(ours.index) == set(expected)
    assert result.n_tests["trans"] == 39 * 15  # counted though not written
    joined = _joined(result.table, pairs)
    small = joined["adj_p_value"] <= threshold
    assert small.any()
    assert_close(joined["adj_p_value"][small], joined["r_adj_default"][small], RTOL, what="BH")
    assert (joined["adj_p_value"] >= joined["r_adj_default"] * (1 - 1e-12)).all()


def test_outcome_from_the_sample_sheet(data) -> None:
    sheet = data["samples"]
    design = design_matrix("~ sex + C(batch)", sheet)
    result = scan(data["genotypes"], sheet["status"], design, p_threshold=1.0,
                  max_missing_exact=60)
    table = result.table.set_index("variant")
    reference = data["outcome"].loc[table.index]
    assert (result.table["phenotype"] == "status").all()
    for ours, ref in (("beta", "beta"), ("se", "se"), ("t", "t"), ("p_value", "p")):
        assert_close(table[ours], reference[ref], RTOL, what=ours)


@pytest.mark.parametrize("options", [{"dtype": "float32"}, {"block_variants": 7},
                                     {"n_threads": 1}, {"block_variants": 3, "n_threads": 2}])
def test_precision_blocks_and_threads_do_not_change_the_result(data, options) -> None:
    arguments = (data["genotypes"], data["phenotypes"], data["covariates"])
    reference = scan(*arguments, p_threshold=0.05).table.set_index(["variant", "phenotype"])
    other = scan(*arguments, p_threshold=0.05, **options).table.set_index(
        ["variant", "phenotype"])
    assert set(other.index) == set(reference.index)
    other = other.loc[reference.index]
    for column in ("beta", "se", "t", "p_value", "adj_p_value"):
        np.testing.assert_allclose(other[column], reference[column], rtol=1e-11)
