"""Counts against R edgeR 3.40.2 / limma 3.54.1: calcNormFactors, filterByExpr, cpm, voom.

References: tests/reference/edger_voom.R and tests/reference/edger/. Data: the real pasilla
RNA-seq counts (Brooks et al. 2011) and a synthetic negative-binomial set with edge cases.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import manylm
from manylm.counts import cpm, filter_by_expr, norm_factors, voom
from manylm.design import Design
from reference_data import assert_close, read_reference

DATASETS = {"pasilla": ("condition", "~ condition + type", {"condition": "untreated"}),
            "synth": ("group", "~ group + batch", {})}


def load(dataset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    counts_file, samples_file = {
        "pasilla": ("pasilla_counts", "pasilla_samples"),
        "synth": ("synth_counts", "synth_counts_samples"),
    }[dataset]
    return (read_reference(f"inputs/{counts_file}.tsv.gz"),
            read_reference(f"inputs/{samples_file}.tsv"))


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_norm_factors(dataset: str) -> None:
    counts, _ = load(dataset)
    reference = read_reference("edger/norm_factors.tsv").reset_index()
    reference = reference[reference["dataset"] == dataset]
    for method, rows in reference.groupby("method"):
        options = {"method": "TMM", "ref_column": 0} if method == "TMM_ref1" else {
            "method": method}
        ours = norm_factors(counts.to_numpy(), **options)
        assert_close(ours, rows["norm_factor"], 1e-10, what=f"{dataset} {method}")


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_filter_by_expr_is_exact(dataset: str) -> None:
    counts, samples = load(dataset)
    group_column, formula, reference_levels = DATASETS[dataset]
    reference = read_reference("edger/filter_by_expr.tsv.gz").reset_index()
    reference = reference[reference["dataset"] == dataset]
    design = manylm.design_matrix(formula, samples, reference=reference_levels)
    variants = {
        "group": {"group": samples[group_column]},
        "design": {"design": design.matrix},
        "default": {},
        "mincount": {"group": samples[group_column], "min_count": 5, "min_total_count": 20},
    }
    for variant, options in variants.items():
        expected = reference[reference["variant"] == variant]
        assert list(expected["feature"]) == list(counts.index)
        ours = filter_by_expr(counts.to_numpy(), **options)
        np.testing.assert_array_equal(ours, expected["keep"].to_numpy() == 1, err_msg=variant)


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_log_cpm(dataset: str) -> None:
    counts, _ = load(dataset)
    reference = read_reference(f"edger/log_cpm_{dataset}.tsv.gz")
    values = counts.loc[reference.index].to_numpy()
    sizes = counts.to_numpy().sum(axis=0) * norm_factors(counts.to_numpy())
    log_columns = [c for c in reference.columns if c.startswith("logcpm:")]
    raw_columns = [c for c in reference.columns if c.startswith("cpm:")]
    assert_close(cpm(values, sizes, log=True), reference[log_columns].to_numpy(), 1e-12)
    assert_close(cpm(values, sizes), reference[raw_columns].to_numpy(), 1e-12)


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_voom_weights_and_table(dataset: str) -> None:
    counts, samples = load(dataset)
    group_column, _, _ = DATASETS[dataset]
    keep = filter_by_expr(counts.to_numpy(), group=samples[group_column])
    kept = counts.loc[keep]
    sizes = kept.to_numpy().sum(axis=0)
    effective = sizes * norm_factors(kept.to_numpy())
    libsize = read_reference(f"edger/voom_{dataset}_libsize.tsv")
    assert_close(effective, libsize["lib_size"], 1e-12, what="effective library sizes")
    design = Design.from_matrix(read_reference(f"edger/voom_{dataset}_design.tsv"))
    result = voom(kept, design, lib_size=effective)
    expression = read_reference(f"edger/voom_{dataset}_E.tsv.gz")
    weights = read_reference(f"edger/voom_{dataset}_weights.tsv.gz")
    assert list(expression.index) == list(result.expression.index)
    assert_close(result.expression.to_numpy(), expression.to_numpy(), 1e-12, what="E")
    assert_close(result.weights.to_numpy(), weights.to_numpy(), 1e-6, what="voom weights")
    trend = read_reference(f"edger/voom_{dataset}_trend.tsv.gz")
    assert_close(result.trend_x, trend["sx"], 1e-10, what="trend x")
    assert_close(result.trend_y, trend["sy"], 1e-8, what="trend y")
    assert_close(result.trend_line_y, trend["line_y"], 1e-8, what="lowess line")
    fit = manylm.lm_fit(result.expression, design, weights=result.weights)
    table = manylm.ebayes(fit).top_table(1, sort_by="none")
    top = read_reference(f"edger/voom_{dataset}_top.tsv.gz")
    for ours, theirs in [("estimate", "logFC"), ("ci_low", "CI.L"), ("t", "t"),
                         ("p_value", "P.Value"), ("adj_p_value", "adj.P.Val"), ("lods", "B"),
                         ("mean", "AveExpr")]:
        assert_close(table[ours], top[theirs], 1e-6, what=f"voom table {theirs}")


def test_beta_to_m_and_bad_betas() -> None:
    from manylm.counts import beta_to_m

    beta = pd.DataFrame([[0.5, 0.2], [0.0, 1.0]], index=["cg1", "cg2"], columns=["A", "B"])
    m = beta_to_m(beta)
    np.testing.assert_allclose(m.iloc[0], np.log2([1.0, 0.25]), rtol=1e-5)
    assert np.all(np.isfinite(m))
    beta.iloc[1, 1] = 1.2
    with pytest.raises(manylm.DataError, match=r"1\.2 for feature 'cg2', sample 'B'"):
        beta_to_m(beta)


@pytest.mark.parametrize(("value", "message"), [(-1, "is negative"), (2.5, "whole number"),
                                                 (np.nan, "missing")])
def test_bad_counts(value: float, message: str) -> None:
    from manylm.counts import check_counts

    counts = pd.DataFrame([[1, 2], [3, 4]], index=["g1", "g2"], columns=["A", "B"], dtype=float)
    counts.iloc[1, 0] = value
    with pytest.raises(manylm.DataError, match=f"'g2', sample 'A'.*{message}"):
        check_counts(counts)
    counts.iloc[1, 0] = 0
    counts["B"] = 0
    with pytest.raises(manylm.DataError, match=r"library size zero.*B"):
        check_counts(counts)


def test_voom_with_quality_weights() -> None:
    """limma voomWithQualityWeights (gene-by-gene array weights) on pasilla, then the table."""
    from manylm.counts.voom_quality import voom_with_quality_weights

    counts, samples = load("pasilla")
    keep = filter_by_expr(counts.to_numpy(), group=samples["condition"])
    kept = counts.loc[keep]
    effective = kept.to_numpy().sum(axis=0) * norm_factors(kept.to_numpy())
    design = Design.from_matrix(read_reference("edger/voom_pasilla_design.tsv"))
    result = voom_with_quality_weights(kept, design, lib_size=effective)
    expected = read_reference("blocks/vqw_sample_weights.tsv")["weight"]
    assert result.sample_weights is not None
    assert_close(result.sample_weights.to_numpy(), expected.to_numpy(), 1e-8,
                 what="sample weights")
    weights = read_reference("blocks/vqw_weights.tsv.gz")
    assert_close(result.weights.to_numpy(), weights.to_numpy(), 1e-6, what="weights")
    table = manylm.ebayes(manylm.lm_fit(result.expression, design, weights=result.weights)
                          ).top_table(1, sort_by="none")
    top = read_reference("blocks/vqw_top.tsv.gz")
    for ours, theirs in [("estimate", "logFC"), ("t", "t"), ("adj_p_value", "adj.P.Val"),
                         ("lods", "B")]:
        assert_close(table[ours].to_numpy(), top[theirs].to_numpy(), 1e-6, what=theirs)
