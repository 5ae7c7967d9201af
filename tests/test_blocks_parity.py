"""Correlated samples against R limma 3.54.1: duplicateCorrelation and the blocked (GLS) fit.

References: tests/reference/limma_blocks_weights.R and tests/reference/blocks/ (600 genes x 24
samples in 8 patients of 3; complete, 1% missing, and a weights matrix).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import manylm
from manylm.design import Design
from reference_data import assert_close, read_reference

CASES = {"complete": ("blocked_expr", None), "missing": ("blocked_expr_missing", None),
         "weights": ("blocked_expr", "blocked_weights")}


def load(case: str) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.Series, Design]:
    expression, weights = CASES[case]
    samples = read_reference("inputs/blocked_samples.tsv")
    return (read_reference(f"inputs/{expression}.tsv.gz"),
            None if weights is None else read_reference(f"inputs/{weights}.tsv.gz"),
            samples["patient"], Design.from_matrix(read_reference("blocks/design.tsv")))


def consensus(case: str) -> float:
    table = read_reference("blocks/dupcor.tsv")
    return float(table.loc[f"{case}.consensus.correlation", "value"])


@pytest.mark.parametrize("case", list(CASES))
def test_duplicate_correlation(case: str) -> None:
    expression, weights, patient, design = load(case)
    result = manylm.duplicate_correlation(expression, design, patient, weights=weights)
    assert result.consensus == pytest.approx(consensus(case), rel=1e-10)
    reference = read_reference(f"blocks/dupcor_{case}_atanh.tsv.gz").iloc[:, 0]
    assert_close(result.atanh_correlations, reference, 1e-8, what="atanh correlations")


@pytest.mark.parametrize("case", list(CASES))
def test_blocked_fit_and_table(case: str) -> None:
    expression, weights, patient, design = load(case)
    fit = manylm.lm_fit(expression, design, block=patient, correlation=consensus(case),
                        weights=weights)
    result = manylm.ebayes(fit)
    reference = read_reference(f"blocks/gls_{case}_fit.tsv.gz")
    for j, name in enumerate(fit.coefficient_names):
        assert_close(fit.coefficients[:, j], reference[f"coef:{name}"], 1e-8, what=name)
        assert_close(fit.stdev_unscaled[:, j], reference[f"stdev:{name}"], 1e-8, what=name)
        assert_close(result.t_of(j), reference[f"t:{name}"], 1e-8, what=name)
    assert_close(fit.sigma, reference["sigma"], 1e-8, what="sigma")
    assert_close(fit.df_residual, reference["df_residual"], 0, what="df")
    assert_close(fit.cov_unscaled, read_reference(f"blocks/gls_{case}_cov.tsv").to_numpy(),
                 1e-10, what="cov")
    table = result.top_table(1, sort_by="none")
    top = read_reference(f"blocks/gls_{case}_top.tsv.gz")
    for ours, theirs in [("estimate", "logFC"), ("ci_low", "CI.L"), ("t", "t"),
                         ("p_value", "P.Value"), ("adj_p_value", "adj.P.Val"), ("lods", "B")]:
        assert_close(table[ours], top[theirs], 1e-8, what=theirs)


def test_estimated_correlation_is_used_when_not_given() -> None:
    expression, _, patient, design = load("complete")
    fit = manylm.lm_fit(expression, design, block=patient)
    assert fit.block_correlation == pytest.approx(consensus("complete"), rel=1e-10)


def test_blocks_of_one_sample_are_refused() -> None:
    expression, _, _, design = load("complete")
    with pytest.raises(manylm.DesignError, match="single sample"):
        manylm.duplicate_correlation(expression, design, np.arange(24))


def test_array_weights_reml_and_weighted_table() -> None:
    from manylm.counts import array_weights

    expression, _, _, design = load("complete")
    weights = array_weights(expression, design)
    reference = read_reference("blocks/array_weights.tsv")["weight"]
    assert list(weights.index) == list(reference.index)
    assert_close(weights, reference, 1e-10, what="array weights")
    result = manylm.ebayes(manylm.lm_fit(expression, design, weights=weights.to_numpy()))
    table = result.top_table(1, sort_by="none")
    top = read_reference("blocks/array_weights_top.tsv.gz")
    for ours, theirs in [("estimate", "logFC"), ("t", "t"), ("adj_p_value", "adj.P.Val"),
                         ("lods", "B")]:
        assert_close(table[ours], top[theirs], 1e-8, what=theirs)


@pytest.mark.parametrize(
    ("reference", "case", "options"),
    [
        ("array_weights_genebygene", "complete", {"method": "genebygene"}),
        ("array_weights_missing", "missing", {}),  # "auto" picks gene by gene for NAs
        ("array_weights_prior_weights", "weights", {}),  # ... and for prior weights
        ("array_weights_group_reml", "complete", {"method": "reml", "group": True}),
        ("array_weights_group_genebygene", "complete", {"method": "genebygene", "group": True}),
    ],
)
def test_array_weights_methods(reference: str, case: str, options: dict[str, object]) -> None:
    from manylm.counts import array_weights

    expression, prior, _, design = load(case)
    samples = read_reference("inputs/blocked_samples.tsv")
    found = array_weights(
        expression, design, weights=prior, method=str(options.get("method", "auto")),
        var_group=samples["batch"].to_numpy() if options.get("group") else None,
    )
    expected = read_reference(f"blocks/{reference}.tsv")["weight"]
    assert list(found.index) == list(expected.index)
    assert_close(found, expected, 1e-10, what=reference)


def test_array_weights_bad_method() -> None:
    from manylm.counts import array_weights
    from manylm.errors import InputError

    expression, _, _, design = load("complete")
    with pytest.raises(InputError, match="method must be one of"):
        array_weights(expression, design, method="fast")
