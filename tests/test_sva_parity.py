"""Surrogate variables, num_sv and the nested F test against R sva 3.46.0 (limma 3.54.1).

The R script and its outputs are in tests/reference/sva.R and tests/reference/sva/ (README.md
there). Data: the whole bladderbatch set as manylm ships it (float32 values, which R reads
rounded the same way), the pasilla counts, and a small synthetic set for num_sv "be".

Bars: SVs agree with R's up to sign and rotation (canonical correlations > 0.99; achieved
1 - 1e-12 or better); p-values of limma fits with the SVs added agree to 1e-4 (achieved about
1e-10); sva's F test (f.pvalue) to 1e-8 (achieved about 1e-15); the irw posterior probabilities
to 1e-8; num_sv "leek" counts exactly, and "be" exactly given R's own permutations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import subspace_angles

import manylm
from manylm.confounders.nested_models import nested_f_test
from manylm.confounders.num_sv import be_p_values, leek_counts, leek_selection, num_sv
from manylm.confounders.surrogates_for_fit import (
    design_with_surrogates,
    estimate_surrogates_for_design,
)
from manylm.confounders.sva import SurrogateVariables, sva, svaseq
from manylm.design import Design, design_matrix
from manylm.io import example_paths, read_matrix, read_sample_sheet
from reference_data import read_reference

SV_CORRELATION = 0.99
P_VALUE_ABS = 1e-4
F_TEST_ABS = 1e-8
PPROB_ABS = 1e-8
#: pasilla has 7 samples: R's f.pvalue takes RSS0 - RSS1 as a difference of two sums, which for
#: p-values near 1 is off by up to ~2e-10 (manylm sums the squared effects instead); through
#: the local fdr that moves svaseq's probabilities by up to ~6e-7.
PPROB_ABS_SEVEN_SAMPLES = 5e-6

FORMULAS = {"cancer": "~ cancer", "null": "~ 1", "cancer_batch": "~ cancer + C(batch)",
            "batch": "~ C(batch)"}


@pytest.fixture(scope="module")
def bladder() -> tuple[pd.DataFrame, pd.DataFrame]:
    expression, samples = example_paths()
    return read_matrix(expression), read_sample_sheet(samples)


@pytest.fixture(scope="module")
def pasilla() -> tuple[pd.DataFrame, pd.DataFrame]:
    counts = read_reference("inputs/pasilla_counts.tsv.gz")
    sheet = read_reference("inputs/pasilla_samples.tsv")
    counts = counts.loc[counts.mean(axis=1) > 1, list(sheet.index)]  # as the svaseq vignette
    return counts, sheet


def ref(name: str) -> pd.DataFrame:
    return read_reference(f"sva/{name}")


def canonical_correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.cos(subspace_angles(np.asarray(a), np.asarray(b)))


def test_bladder_values_are_the_ones_r_used(bladder: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    expression, _ = bladder
    sums = ref("bladder_checksums.tsv")["value"]
    assert expression.shape == (int(sums["n_features"]), int(sums["n_samples"]))
    np.testing.assert_allclose(expression.sum(axis=0), sums[list(expression.columns)],
                               rtol=1e-12)


# ------------------------------------------------------------------------------ num_sv leek
LEEK_CASES = {
    "bladder_cancer": ("bladder", "~ cancer"),
    "bladder_cancer_batch": ("bladder", "~ cancer + C(batch)"),
    "bladder_null": ("bladder", "~ 1"),
    "pasilla_condition": ("pasilla", "~ condition"),
    "pasilla_condition_type": ("pasilla", "~ condition + type"),
}
#: manylm's num_sv "leek" (documented in num_sv's Notes: R's count depends on rounding noise).
LEEK_EXPECTED = {"bladder_cancer": 2, "bladder_cancer_batch": 0, "bladder_null": 5,
                 "pasilla_condition": 1, "pasilla_condition_type": 0}


def _leek_inputs(case: str, bladder: tuple[pd.DataFrame, pd.DataFrame],
                 pasilla: tuple[pd.DataFrame, pd.DataFrame]
                 ) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    source, formula = LEEK_CASES[case]
    if source == "bladder":
        return bladder[0], bladder[1], formula
    counts, sheet = pasilla
    return np.log(counts + 1.0), sheet, formula


@pytest.mark.parametrize("case", list(LEEK_CASES))
def test_leek_counts_match_r(case: str, bladder: tuple[pd.DataFrame, pd.DataFrame],
                             pasilla: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    data, sheet, formula = _leek_inputs(case, bladder, pasilla)
    design = design_matrix(formula, sheet)
    ours = leek_counts(data[design.sample_ids].to_numpy(), design.matrix)
    r_counts = ref(f"leek_rhat_{case}.tsv").to_numpy().astype(np.int64)
    # Every threshold a > 0 is far above rounding noise: the counts are R's exactly. At a = 0
    # R also counts those of the p exactly-zero eigenvalues that rounding made positive.
    np.testing.assert_array_equal(ours[1:], r_counts[1:])
    n_samples, n_model = design.matrix.shape
    assert np.all(ours[0] == n_samples - n_model)
    assert np.all((r_counts[0] >= n_samples - n_model) & (r_counts[0] <= n_samples))
    # The selection rule, given R's own table, is num.sv's.
    r_answer = int(ref("leek_num_sv.tsv").loc[case, "num_sv"])
    assert leek_selection(r_counts) == r_answer


@pytest.mark.parametrize("case", list(LEEK_CASES))
def test_leek_num_sv(case: str, bladder: tuple[pd.DataFrame, pd.DataFrame],
                     pasilla: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    data, sheet, formula = _leek_inputs(case, bladder, pasilla)
    assert num_sv(data, formula, samples=sheet, method="leek") == LEEK_EXPECTED[case]


# -------------------------------------------------------------------------------- num_sv be
@pytest.fixture(scope="module")
def be_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return ref("be_expr.tsv.gz"), ref("be_samples.tsv")


def test_be_with_r_permutations(be_data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    expression, sheet = be_data
    table = ref("be_permutations.tsv.gz")  # indexed by permutation number
    n_perm, n_samples = int(table.index.astype(int).max()), expression.shape[1]
    assert list(table.loc["1", "feature"]) == list(expression.index)
    perms = table.drop(columns="feature").to_numpy(dtype=np.int64).reshape(
        n_perm, expression.shape[0], n_samples) - 1
    summary = ref("be_num_sv.tsv")["value"]
    design = design_matrix("~ group", sheet)
    p_values = be_p_values(expression.to_numpy(), design.matrix, permutations=perms,
                           n_components=int(summary["n_components"]))
    np.testing.assert_array_equal(p_values, ref("be_pvalues.tsv")["p_value"].to_numpy())
    assert num_sv(expression, "~ group", samples=sheet, permutations=perms) == int(
        summary["num_sv"])


def test_be_seeded_count_does_not_depend_on_blocks(
        be_data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    expression, sheet = be_data
    design = design_matrix("~ group", sheet)
    small = be_p_values(expression.to_numpy(), design.matrix, seed=5, block_rows=7)
    large = be_p_values(expression.to_numpy(), design.matrix, seed=5, block_rows=1000)
    np.testing.assert_array_equal(small, large)
    assert num_sv(expression, "~ group", samples=sheet, seed=5) == int(np.sum(small <= 0.1))


def test_be_on_bladder_within_r_seeds(bladder: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    expression, sheet = bladder
    summary = ref("be_num_sv.tsv")["value"]
    r_counts = summary[summary.index.str.startswith("bladder_cancer_seed")].astype(int)
    ours = num_sv(expression, "~ cancer", samples=sheet, method="be", seed=1)
    assert r_counts.min() - 1 <= ours <= r_counts.max() + 1


# ---------------------------------------------------------------------------------- sva
def _ours_and_r(case: str, bladder: tuple[pd.DataFrame, pd.DataFrame],
                pasilla: tuple[pd.DataFrame, pd.DataFrame]) -> dict[str, object]:
    expression, sheet = bladder
    if case == "irw_cancer":
        full, null = FORMULAS["cancer"], FORMULAS["null"]
        result = sva(expression, full, null, samples=sheet, n_sv=2)
    elif case == "irw_cancer_batch":
        full, null = FORMULAS["cancer_batch"], FORMULAS["batch"]
        result = sva(expression, full, null, samples=sheet, n_sv=2)
    elif case == "two_step_cancer":
        full, null = FORMULAS["cancer"], FORMULAS["null"]
        result = sva(expression, full, samples=sheet, n_sv=3, method="two-step")
    elif case == "supervised_cancer":
        full, null = FORMULAS["cancer"], FORMULAS["null"]
        controls = nested_f_test(expression, full, null, samples=sheet)["p_value"]
        result = sva(expression, full, samples=sheet, n_sv=2, method="supervised",
                     controls=controls)
    else:
        expression, sheet = pasilla
        full, null = "~ condition", "~ 1"
        result = svaseq(expression, full, null, samples=sheet, n_sv=2)
        expression = np.log(expression + 1.0)
    return {"result": result, "expression": expression, "sheet": sheet, "full": full,
            "null": null}


SVA_CASES = ["irw_cancer", "irw_cancer_batch", "two_step_cancer", "supervised_cancer",
             "svaseq_pasilla"]


@pytest.mark.parametrize("case", SVA_CASES)
def test_sva_matches_r(case: str, bladder: tuple[pd.DataFrame, pd.DataFrame],
                       pasilla: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    run = _ours_and_r(case, bladder, pasilla)
    result = run["result"]
    assert isinstance(result, SurrogateVariables)
    r_sv = ref(f"{case}_sv.tsv")
    assert list(result.surrogates.index) == list(r_sv.index)
    assert result.n_sv == r_sv.shape[1]
    correlations = canonical_correlations(result.surrogates, r_sv)
    assert correlations.min() > SV_CORRELATION, correlations
    np.testing.assert_allclose(correlations, 1.0, atol=1e-8)

    if case != "supervised_cancer":
        r_pprob = ref(f"{case}_pprob.tsv.gz")
        tolerance = PPROB_ABS_SEVEN_SAMPLES if case == "svaseq_pasilla" else PPROB_ABS
        np.testing.assert_allclose(result.pprob_gam, r_pprob["pprob_gam"], atol=tolerance,
                                   rtol=0)
        if "pprob_b" in r_pprob:
            assert result.pprob_b is not None
            np.testing.assert_allclose(result.pprob_b, r_pprob["pprob_b"], atol=tolerance,
                                       rtol=0)

    # limma with our SVs added to the design, against limma with R's.
    sheet, expression = run["sheet"], run["expression"]
    full = design_matrix(str(run["full"]), sheet)  # type: ignore[arg-type]
    null = design_matrix(str(run["null"]), sheet)  # type: ignore[arg-type]
    extended = design_with_surrogates(full, result.surrogates)
    tested = [t for t in full.terms if t != "Intercept" and t not in null.terms]
    table = manylm.ebayes(manylm.lm_fit(expression, extended)).top_table(tested, sort_by="none")
    r_p = ref(f"{case}_pvalues.tsv.gz")
    np.testing.assert_allclose(table["p_value"], r_p["limma_p"], atol=P_VALUE_ABS, rtol=0)
    null_extended = design_with_surrogates(null, result.surrogates)
    f_test = nested_f_test(expression, extended, null_extended)
    np.testing.assert_allclose(f_test["p_value"], r_p["f_pvalue"], atol=P_VALUE_ABS, rtol=0)


def test_sva_does_not_depend_on_block_size(bladder: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    expression, sheet = bladder
    whole = sva(expression, "~ cancer", samples=sheet, n_sv=2, iterations=2)
    blocks = sva(expression, "~ cancer", samples=sheet, n_sv=2, iterations=2, block_rows=997)
    np.testing.assert_allclose(blocks.surrogates, whole.surrogates, atol=1e-10)
    np.testing.assert_allclose(blocks.pprob_gam, whole.pprob_gam, atol=1e-10)


# ------------------------------------------------------------------------------- f.pvalue
def test_f_pvalue_both_spellings(bladder: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    expression, sheet = bladder
    r_p = ref("f_pvalue_cancer_batch.tsv.gz")["p_value"]
    by_null = nested_f_test(expression, "~ cancer + C(batch)", "~ C(batch)", samples=sheet)
    by_test = nested_f_test(expression, "~ cancer + C(batch)", test="cancer", samples=sheet)
    assert list(by_null.index) == list(r_p.index)
    np.testing.assert_allclose(by_null["p_value"], r_p, atol=F_TEST_ABS, rtol=0)
    np.testing.assert_allclose(by_test["p_value"], by_null["p_value"], rtol=1e-12, atol=0)
    assert (by_null["df1"] == 2).all() and (by_null["df2"] == 57 - 7).all()


def test_f_pvalue_with_r_surrogates(bladder: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    expression, sheet = bladder
    r_sv = ref("irw_cancer_sv.tsv")
    full = design_with_surrogates(design_matrix("~ cancer", sheet), r_sv)
    null = design_with_surrogates(design_matrix("~ 1", sheet), r_sv)
    ours = nested_f_test(expression, full, null)["p_value"]
    np.testing.assert_allclose(ours, ref("irw_cancer_pvalues.tsv.gz")["f_pvalue"],
                               atol=F_TEST_ABS, rtol=0)


# -------------------------------------------------------------------- surrogates for a fit
def test_surrogates_for_design_is_sva_with_the_tested_terms_dropped(
        bladder: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    expression, sheet = bladder
    design = design_matrix("~ cancer + C(batch)", sheet)
    surrogates, k = estimate_surrogates_for_design(expression, design, ["cancer"], 2)
    assert k == 2 and list(surrogates.columns) == ["sv1", "sv2"]
    assert list(surrogates.index) == list(design.sample_ids)
    correlations = canonical_correlations(surrogates, ref("irw_cancer_batch_sv.tsv"))
    np.testing.assert_allclose(correlations, 1.0, atol=1e-8)
    extended = design_with_surrogates(design, surrogates)
    assert isinstance(extended, Design)
    assert extended.coefficient_names[-2:] == ["sv1", "sv2"]
    assert extended.terms["sv1"] == ["sv1"]


def test_constant_and_incomplete_features_are_left_out(
        be_data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    expression, sheet = be_data
    data = expression.copy()
    data.iloc[0] = 5.0
    data.iloc[1, 3] = np.nan
    with pytest.warns(manylm.ManylmWarning) as caught:
        result = sva(data, "~ group", samples=sheet, n_sv=2)
    messages = " ".join(str(w.message) for w in caught)
    assert "1 feature(s) with a constant value" in messages and "f001" in messages
    assert "1 feature(s) with missing or infinite values" in messages and "f002" in messages
    assert result.excluded_features == ["f001", "f002"]
    assert result.pprob_gam.iloc[:2].isna().all() and result.pprob_gam.iloc[2:].notna().all()
    clean = sva(expression.iloc[2:], "~ group", samples=sheet, n_sv=2)
    np.testing.assert_allclose(result.surrogates, clean.surrogates, atol=1e-12)


def test_zero_surrogates_and_limits(be_data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    expression, sheet = be_data
    none = sva(expression, "~ group", samples=sheet, n_sv=0)
    assert none.n_sv == 0 and none.surrogates.shape == (24, 0)
    with pytest.raises(manylm.InputError, match="at most 21 surrogate variable"):
        sva(expression, "~ group", samples=sheet, n_sv=22)
    unrelated = pd.DataFrame({"Intercept": 1.0, "age": np.arange(24.0)}, index=sheet.index)
    with pytest.raises(manylm.DesignError, match=r"not nested.*column.*age"):
        sva(expression, "~ group", unrelated, samples=sheet, n_sv=1)
