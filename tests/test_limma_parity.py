"""manylm against R limma 3.54.1: every statistic of lmFit/eBayes/treat/contrasts.fit/topTable.

The R script and its outputs are in tests/reference/ (limma_core.R, README.md). Core statistics
agree to relative 1e-8; trend to 1e-8 too; robust to 1e-6 (limma finds its df by uniroot with
tol=1e-8, this implementation solves to machine precision).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import manylm
from manylm.design import Design
from reference_data import assert_close, read_reference, read_scalars

CORE = 1e-8
ROBUST = 1e-6


def bladder(name: str = "bladder_expr") -> pd.DataFrame:
    return read_reference(f"inputs/{name}.tsv.gz")


def r_design(case: str) -> Design:
    table = read_reference(f"limma/{case}.design.tsv")
    return Design.from_matrix(table)


def fit_case(case: str, data: pd.DataFrame, **options: object) -> manylm.LinearModelFit:
    return manylm.lm_fit(data, r_design(case), **options)


def compare_fit(case: str, result: manylm.ModeratedFit, rtol: float = CORE, *,
                lods: bool = True, f: bool = True) -> None:
    ref = read_reference(f"limma/{case}.fit.tsv.gz")
    fit = result.fit
    if "bigmean" in ref.index:
        # 1e6 + noise of sd 0.01: limma's residuals come from Householder effects of the
        # uncentred data and carry a relative error near 1e-8 here; manylm centres first. The
        # intercept's t (about 1.6e8) is compared to 1e-7, everything else to rtol.
        big = int(np.flatnonzero(ref.index == "bigmean")[0])
        assert_close(result.t[big], ref.iloc[big].filter(like="t:"), 1e-7, what="bigmean t")
        keep = np.asarray(ref.index != "bigmean")
        ref = ref.loc[keep]
        result = result.subset(keep)
        fit = result.fit
    assert list(fit.feature_ids) == list(ref.index)
    for j, name in enumerate(fit.coefficient_names):
        assert_close(fit.coefficients[:, j], ref[f"coef:{name}"], rtol, what=f"coef {name}")
        assert_close(fit.stdev_unscaled[:, j], ref[f"stdev:{name}"], rtol, what=f"stdev {name}")
        assert_close(result.t[:, j], ref[f"t:{name}"], rtol, what=f"t {name}")
        assert_close(result.p_value[:, j], ref[f"p:{name}"], rtol, what=f"p {name}")
        if lods and f"lods:{name}" in ref:
            assert result.lods is not None
            assert_close(result.lods[:, j], ref[f"lods:{name}"], rtol, what=f"lods {name}")
    assert_close(fit.sigma, ref["sigma"], rtol, what="sigma")
    assert_close(fit.df_residual, ref["df_residual"], 0, what="df_residual")
    assert_close(fit.mean, ref["Amean"], CORE, what="Amean")
    assert_close(result.s2_post, ref["s2_post"], rtol, what="s2_post")
    assert_close(result.df_total, ref["df_total"], rtol, what="df_total")
    assert_close(np.broadcast_to(result.df_prior, fit.n_features), ref["df_prior"], rtol,
                 what="df_prior")
    assert_close(np.broadcast_to(result.s2_prior, fit.n_features), ref["s2_prior"], rtol,
                 what="s2_prior")
    if f and "F" in ref:
        assert result.F is not None
        assert_close(result.F, ref["F"], rtol, what="F")
        assert_close(result.F_p_value, ref["F_p"], rtol, what="F p-value")


T_COLUMNS = {"logFC": "estimate", "CI.L": "ci_low", "CI.R": "ci_high", "AveExpr": "mean",
             "t": "t", "P.Value": "p_value", "adj.P.Val": "adj_p_value", "B": "lods"}


def compare_top(ours: pd.DataFrame, case: str, label: str, rtol: float = CORE,
                coefficient_names: dict[str, str] | None = None) -> None:
    ref = read_reference(f"limma/{case}.top_{label}.tsv.gz")
    assert list(ours.index) == list(ref.index), f"{case} {label}: row order differs"
    mapping = dict(T_COLUMNS)
    if "F" in ref:
        mapping = {"AveExpr": "mean", "F": "F", "P.Value": "p_value", "adj.P.Val": "adj_p_value"}
        mapping.update(coefficient_names or {})
    for r_name, our_name in mapping.items():
        if r_name in ref:
            assert_close(ours[our_name], ref[r_name], rtol, what=f"{case} {label} {r_name}")
    expected = [mapping[c] for c in ref.columns if c in mapping]
    assert [c for c in ours.columns if c in expected] == expected


@pytest.fixture(scope="module")
def dense_fit() -> manylm.LinearModelFit:
    return fit_case("dense", bladder())


CANCER = "cancerCancer"
F_NAMES = {"cancerBiopsy": "cancerBiopsy", "cancerCancer": "cancerCancer"}


def test_dense(dense_fit: manylm.LinearModelFit) -> None:
    eb = manylm.ebayes(dense_fit)
    compare_fit("dense", eb)
    scalars = read_scalars("dense")
    assert_close(eb.var_prior, [scalars[f"var_prior:{n}"] for n in dense_fit.coefficient_names],
                 CORE, what="var_prior")
    cov = read_reference("limma/dense.cov.tsv").to_numpy()
    assert_close(dense_fit.cov_unscaled, cov, CORE, what="cov.coefficients")
    compare_top(eb.top_table(CANCER, sort_by="none"), "dense", "cancerCancer")
    compare_top(eb.top_table(CANCER, sort_by="none", confint=0.90), "dense",
                "cancerCancer_ci90")
    compare_top(eb.top_table(CANCER, sort_by="p", adjust="BY"), "dense", "cancerCancer_sortP")
    compare_top(eb.top_table(CANCER, sort_by="estimate", p_value=0.05, lfc=1), "dense",
                "cancerCancer_filtered")
    compare_top(eb.top_table(["cancerBiopsy", CANCER], sort_by="none"), "dense", "cancer_F",
                coefficient_names=F_NAMES)


@pytest.mark.parametrize(
    ("case", "trend", "robust", "rtol"),
    [("trend", True, False, CORE), ("robust", False, True, ROBUST),
     ("trend_robust", True, True, ROBUST)],
)
def test_trend_and_robust(dense_fit: manylm.LinearModelFit, case: str, trend: bool,
                          robust: bool, rtol: float) -> None:
    eb = manylm.ebayes(dense_fit, trend=trend, robust=robust)
    compare_fit(case, eb, rtol)
    compare_top(eb.top_table(CANCER, sort_by="none"), case, "cancerCancer", rtol)
    compare_top(eb.top_table(["cancerBiopsy", CANCER], sort_by="none"), case, "cancer_F", rtol,
                coefficient_names=F_NAMES)


@pytest.mark.parametrize("case", ["treat", "treat_trend"])
def test_treat(dense_fit: manylm.LinearModelFit, case: str) -> None:
    result = manylm.treat(dense_fit, lfc=np.log2(1.2), trend=case == "treat_trend")
    compare_fit(case, result, lods=False, f=False)
    if case == "treat":
        compare_top(result.top_table(CANCER, sort_by="none"), case, "cancerCancer")


def contrast_fit(data: pd.DataFrame, case: str) -> manylm.ModeratedFit:
    fit = fit_case(case, data)
    matrix = read_reference("limma/contrasts.contrast_matrix.tsv")
    matrix.index = fit.coefficient_names
    return manylm.ebayes(manylm.contrasts_fit(fit, matrix))


def test_contrasts() -> None:
    eb = contrast_fit(bladder(), "contrasts")
    compare_fit("contrasts", eb)
    compare_top(eb.top_table("CvB", sort_by="none"), "contrasts", "CvB")
    compare_top(eb.top_table(sort_by="none"), "contrasts", "F",
                coefficient_names={c: c for c in ("CvB", "CvN", "BvN")})
    for method in ("separate", "global"):
        ours = eb.decide_tests(method=method)
        ref = read_reference(f"limma/contrasts.decide_{method}.tsv")
        np.testing.assert_array_equal(ours.to_numpy(), ref.to_numpy())


def test_contrast_strings_match_matrix() -> None:
    fit = fit_case("contrasts", bladder())
    strings = manylm.contrasts_fit(fit, ["CvB = Cancer - Biopsy", "CvN = Cancer - Normal",
                                         "BvN = Biopsy - Normal"])
    ref = read_reference("limma/contrasts.fit.tsv.gz")
    assert_close(strings.coefficients[:, 0], ref["coef:CvB"], CORE)
    assert_close(strings.stdev_unscaled[:, 2], ref["stdev:BvN"], CORE)


def test_missing_values() -> None:
    eb = manylm.ebayes(fit_case("missing", bladder("bladder_missing_expr")))
    compare_fit("missing", eb)
    compare_top(eb.top_table(CANCER, sort_by="none"), "missing", "cancerCancer")
    compare_top(eb.top_table(["cancerBiopsy", CANCER], sort_by="none"), "missing", "cancer_F",
                coefficient_names=F_NAMES)


def test_missing_values_with_contrasts() -> None:
    eb = contrast_fit(bladder("bladder_missing_expr"), "missing_contrasts")
    compare_fit("missing_contrasts", eb)
    compare_top(eb.top_table("CvB", sort_by="none"), "missing_contrasts", "CvB")


def test_weights_matrix() -> None:
    weights = bladder("bladder_weights")
    eb = manylm.ebayes(fit_case("weights", bladder(), weights=weights))
    compare_fit("weights", eb)
    compare_top(eb.top_table(CANCER, sort_by="none"), "weights", "cancerCancer")


def test_sample_weights() -> None:
    weights = read_reference("limma/array_weights.weights.tsv")["weight"]
    eb = manylm.ebayes(fit_case("array_weights", bladder(), weights=weights.to_numpy()))
    compare_fit("array_weights", eb)
    compare_top(eb.top_table(CANCER, sort_by="none"), "array_weights", "cancerCancer")


def test_rank_deficient_design() -> None:
    with pytest.warns(manylm.ManylmWarning, match="not estimable.*extra"):
        design = r_design("rank_deficient")
    fit = manylm.lm_fit(bladder(), design)
    eb = manylm.ebayes(fit)
    compare_fit("rank_deficient", eb, f=False)
    assert eb.F is None  # limma computes no F for a rank-deficient design
    compare_top(eb.top_table(CANCER, sort_by="none"), "rank_deficient", "cancerCancer")
    with pytest.raises(manylm.EstimabilityError, match="extra"):
        eb.top_table("extra")


@pytest.mark.parametrize(("case", "options"), [("synth_edge", {}),
                                               ("synth_edge_robust", {"robust": True})])
def test_synthetic_edge_cases(case: str, options: dict[str, bool]) -> None:
    data = read_reference("inputs/synth_edge_expr.tsv.gz")
    eb = manylm.ebayes(fit_case(case, data), **options)
    compare_fit(case, eb, CORE if not options else ROBUST)
    group = "groupB"
    compare_top(eb.top_table(group, sort_by="none"), case, "groupB",
                CORE if not options else ROBUST)
    fit = eb.fit
    # The all-missing feature has no estimate at all; the one with 4 values for 5
    # coefficients has no residual df; the exact fit has (near) zero variance.
    position = {f: i for i, f in enumerate(fit.feature_ids)}
    assert np.all(np.isnan(fit.coefficients[position["allNA"]]))
    assert fit.df_residual[position["fewobs"]] == 0
    assert np.isnan(fit.coefficients[position["onegroup"], fit.coefficient_names.index(group)])


def test_synthetic_trend_with_all_missing_feature() -> None:
    """R refuses trend=TRUE when a feature is all missing (Amean NaN); manylm handles it."""
    data = read_reference("inputs/synth_edge_expr.tsv.gz")
    fit = fit_case("synth_edge_trend_dropNA", data)
    keep = np.asarray(fit.feature_ids != "allNA")
    eb = manylm.ebayes(fit.subset(keep), trend=True)
    compare_fit("synth_edge_trend_dropNA", eb)
    with_na = manylm.ebayes(fit, trend=True)
    assert np.isnan(with_na.t[~keep]).all()
    assert_close(with_na.t[keep], eb.t, CORE)


def test_n_equals_p_plus_one() -> None:
    data = read_reference("inputs/synth_small_expr.tsv.gz")
    eb = manylm.ebayes(fit_case("synth_small", data))
    assert np.isinf(eb.df_prior)
    compare_fit("synth_small", eb)
    compare_top(eb.top_table("groupB", sort_by="none"), "synth_small", "groupB")


def test_p_adjust() -> None:
    ref = read_reference("limma/padjust.tsv")
    for method in ("BH", "BY", "holm", "bonferroni"):
        assert_close(manylm.p_adjust(ref["p"].to_numpy(), method), ref[method], 1e-12,
                     what=method)


def test_formula_design_equals_r_design() -> None:
    samples = read_reference("inputs/bladder_samples.tsv")
    design = manylm.design_matrix("~ cancer + C(batch)", samples, reference={"cancer": "Normal"})
    np.testing.assert_array_equal(design.matrix, r_design("dense").matrix)
    fit = manylm.lm_fit(bladder(), "~ cancer + C(batch)", samples=samples,
                        reference={"cancer": "Normal"})
    table = fit.ebayes().top_table("cancer[Cancer]", sort_by="none")
    compare_top(table, "dense", "cancerCancer")
