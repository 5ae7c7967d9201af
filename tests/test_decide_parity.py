"""decide_tests against R limma 3.54.1's decideTests: separate, global, hierarchical, nestedF.

References: tests/reference/decide_tests.R and tests/reference/decide/ (README.md there). Four
contrast fits of the bladder data (three contrasts; the same with robust eBayes; four
contrasts; one contrast) and the bladder data with missing values, 13 settings each (adjust
methods, levels, lfc). The -1/0/1 calls agree exactly. Where limma reports NA (missing p-values)
manylm reports 0; limma's hierarchical/nestedF stop on a missing F p-value, so R ran those on
the features that have one, and manylm's calls for the others must be 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import manylm
from manylm.design import Design
from manylm.errors import InputError
from reference_data import read_reference

CONTRASTS = ["CvB = Cancer - Biopsy", "CvN = Cancer - Normal", "BvN = Biopsy - Normal"]
FITS = {
    "contrasts": ("bladder_expr", CONTRASTS, {}),
    "contrasts_robust": ("bladder_expr", CONTRASTS, {"robust": True}),
    "contrasts4": ("bladder_expr", [*CONTRASTS, "b2v1 = batch2"], {}),
    "contrast1": ("bladder_expr", CONTRASTS[:1], {}),
    "missing_contrasts": ("bladder_missing_expr", CONTRASTS, {}),
}
SETTINGS = {
    "separate_BH": ("separate", "BH", 0.05, 0.0),
    "global_BH": ("global", "BH", 0.05, 0.0),
    "hierarchical_BH": ("hierarchical", "BH", 0.05, 0.0),
    "hierarchical_holm": ("hierarchical", "holm", 0.05, 0.0),
    "hierarchical_BY_0.1": ("hierarchical", "BY", 0.1, 0.0),
    "hierarchical_bonferroni": ("hierarchical", "bonferroni", 0.05, 0.0),
    "hierarchical_none_0.001": ("hierarchical", "none", 0.001, 0.0),
    "nestedF_BH": ("nestedF", "BH", 0.05, 0.0),
    "nestedF_holm": ("nestedF", "holm", 0.05, 0.0),
    "nestedF_BY_0.1": ("nestedF", "BY", 0.1, 0.0),
    "nestedF_none_0.001": ("nestedF", "none", 0.001, 0.0),
    "nestedF_BH_lfc1": ("nestedF", "BH", 0.05, 1.0),
    "hierarchical_BH_lfc1": ("hierarchical", "BH", 0.05, 1.0),
}


@pytest.fixture(scope="module")
def fits() -> dict[str, manylm.ModeratedFit]:
    design = Design.from_matrix(read_reference("limma/contrasts.design.tsv"))
    out = {}
    for case, (data_name, contrasts, options) in FITS.items():
        data = read_reference(f"inputs/{data_name}.tsv.gz")
        fit = manylm.contrasts_fit(manylm.lm_fit(data, design), contrasts)
        out[case] = manylm.ebayes(fit, **options)
    return out


@pytest.mark.parametrize("case", list(FITS))
def test_calls_match_limma(case: str, fits: dict[str, manylm.ModeratedFit]) -> None:
    result = fits[case]
    for label, (method, adjust, p_value, lfc) in SETTINGS.items():
        ours = result.decide_tests(method=method, adjust=adjust, p_value=p_value, lfc=lfc)
        reference = read_reference(f"decide/{case}.{label}.tsv.gz")
        assert (ours.dtypes == np.int8).all(), label
        assert list(ours.columns) == list(reference.columns), label
        # limma's NA (a missing p-value) is 0 here.
        expected = np.nan_to_num(reference.to_numpy()).astype(np.int8)
        np.testing.assert_array_equal(ours.loc[reference.index].to_numpy(), expected,
                                      err_msg=f"{case} {label}")
        left_out = ours.drop(index=reference.index)
        assert (left_out.to_numpy() == 0).all(), f"{case} {label}: features without an F"


def test_features_without_f_are_the_ones_limma_drops(
        fits: dict[str, manylm.ModeratedFit]) -> None:
    result = fits["missing_contrasts"]
    assert result.F_p_value is not None
    expected = read_reference("decide/missing_contrasts.na_f.tsv").index
    assert list(result.feature_ids[np.isnan(result.F_p_value)]) == list(expected)


def test_nested_methods_need_an_f_statistic() -> None:
    design = Design.from_matrix(read_reference("limma/contrasts.design.tsv"))
    data = read_reference("inputs/bladder_expr.tsv.gz").iloc[:200]
    treated = manylm.treat(manylm.contrasts_fit(manylm.lm_fit(data, design), CONTRASTS),
                           lfc=0.5)
    for method in ("hierarchical", "nestedF"):
        with pytest.raises(InputError, match="F statistic"):
            treated.decide_tests(method=method)
    assert treated.decide_tests(method="separate").shape == (200, 3)


@pytest.mark.parametrize(("options", "message"), [
    ({"method": "nested"}, "'method'"),
    ({"adjust": "qvalue"}, "'adjust'"),
    ({"p_value": 1.5}, "'p_value'"),
    ({"lfc": -1.0}, "'lfc'"),
])
def test_bad_options(options: dict[str, object], message: str,
                     fits: dict[str, manylm.ModeratedFit]) -> None:
    with pytest.raises(InputError, match=message):
        fits["contrast1"].decide_tests(**options)


def test_fdr_is_bh(fits: dict[str, manylm.ModeratedFit]) -> None:
    result = fits["contrasts"]
    pd.testing.assert_frame_equal(result.decide_tests(method="nestedF", adjust="fdr"),
                                  result.decide_tests(method="nestedF", adjust="BH"))
