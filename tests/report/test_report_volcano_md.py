"""Volcano and mean-difference plots: points, status, labels."""

from __future__ import annotations

import numpy as np
import pytest
from report_data import COEF, HOSTILE

from manylm.errors import InputError
from manylm.report import (
    coefficient_statistics,
    mean_difference,
    plot_mean_difference,
    plot_volcano,
    volcano,
)
from reference_data import read_reference

DENSE = "cancer[T.Cancer]"


def test_volcano_matches_limma_volcanoplot_data() -> None:
    # limma's volcanoplot(fit, coef, style = "p-value"): x = coefficient, y = -log10(p).
    import manylm
    from manylm.io import read_matrix, read_sample_sheet

    expression = read_matrix("tests/reference/inputs/bladder_expr.tsv.gz")
    samples = read_sample_sheet("tests/reference/inputs/bladder_samples.tsv")
    design = manylm.design_matrix("~ cancer + C(batch)", samples,
                                  reference={"cancer": "Normal"})
    result = manylm.ebayes(manylm.lm_fit(expression[design.sample_ids], design))
    data = volcano(result, DENSE, max_points=10**6)
    limma = read_reference("limma/dense.fit.tsv.gz")
    np.testing.assert_allclose(data.estimate, limma["coef:cancerCancer"], rtol=1e-10)
    np.testing.assert_allclose(data.minus_log10_p, -np.log10(limma["p:cancerCancer"]),
                               rtol=1e-8)


def test_volcano_keeps_all_significant_points_and_labels_the_best(bladder) -> None:
    statistics = coefficient_statistics(bladder.result, COEF)
    data = volcano(bladder.result, COEF, max_points=100, label_top=5)
    n_significant = int(np.sum(statistics.adj_p_value <= 0.05))
    assert data.n_significant == n_significant == int(data.significant.sum())
    assert data.n_drawn <= n_significant + 100 + 400
    best = np.argsort(statistics.p_value, kind="stable")[:5]
    assert [label for label, _, _ in data.labels] == [str(bladder.result.feature_ids[i])
                                                      for i in best]
    np.testing.assert_allclose(data.estimate, statistics.estimate[data.rows])
    assert f"of {statistics.p_value.size:,} points drawn" in data.caption


def test_volcano_plot_text_is_literal(bladder) -> None:
    pytest.importorskip("matplotlib")
    data = volcano(bladder.result, COEF, label_top=3)
    data.labels.append(("$\\alpha$ and " + HOSTILE, 0.0, 1.0))
    axes = plot_volcano(data).axes[0]
    texts = [t.get_text() for t in axes.texts]
    assert "$\\alpha$ and " + HOSTILE in texts
    assert all(not t.get_parse_math() for t in axes.texts)
    assert axes.get_ylabel() == "-log10(p-value)" and COEF in axes.get_xlabel()
    legend = [t.get_text() for t in axes.get_legend().get_texts()]
    assert legend[0] == "not significant" and legend[1].startswith("up")


def test_mean_difference_status(bladder) -> None:
    statistics = coefficient_statistics(bladder.result, COEF)
    data = mean_difference(statistics, significance=0.01, max_points=50)
    up = (statistics.adj_p_value <= 0.01) & (statistics.estimate > 0)
    down = (statistics.adj_p_value <= 0.01) & (statistics.estimate < 0)
    assert (data.n_up, data.n_down) == (int(up.sum()), int(down.sum()))
    np.testing.assert_array_equal(data.status, (up.astype(int) - down.astype(int))[data.rows])
    np.testing.assert_allclose(data.mean, bladder.fit.mean[data.rows])
    pytest.importorskip("matplotlib")
    axes = plot_mean_difference(data).axes[0]
    assert axes.get_xlabel() == "mean expression"
    labels = [t.get_text() for t in axes.get_legend().get_texts()]
    assert labels == ["not significant", f"up ({data.n_up:,})", f"down ({data.n_down:,})"]


def test_unknown_coefficient(bladder) -> None:
    with pytest.raises(InputError, match="not a coefficient"):
        volcano(bladder.result, "nope")
    with pytest.raises(InputError, match="coef="):
        mean_difference(bladder.result)
    with pytest.raises(InputError, match="significance"):
        volcano(bladder.result, COEF, significance=0)
