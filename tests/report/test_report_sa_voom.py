"""SA plot against limma's plotSA, and voom's trend."""

from __future__ import annotations

import numpy as np
import pytest

import manylm
from manylm.errors import InputError
from manylm.io import read_matrix, read_sample_sheet
from manylm.report import plot_sa_trend, plot_voom_trend, sa_trend, voom_trend
from reference_data import assert_close, read_reference


@pytest.fixture(scope="module")
def bladder_fit():
    expression = read_matrix("tests/reference/inputs/bladder_expr.tsv.gz")
    samples = read_sample_sheet("tests/reference/inputs/bladder_samples.tsv")
    design = manylm.design_matrix("~ cancer + C(batch)", samples,
                                  reference={"cancer": "Normal"})
    return manylm.lm_fit(expression[design.sample_ids], design)


def test_sa_plot_matches_limma_dense(bladder_fit) -> None:
    data = sa_trend(manylm.ebayes(bladder_fit), max_points=10**6)
    limma = read_reference("report/sa_dense.tsv.gz")
    assert data.n_drawn == len(limma) and not data.robust
    assert_close(data.mean, limma["x"], 1e-10, what="x")
    assert_close(data.sqrt_sigma, limma["y"], 1e-10, what="sqrt(sigma)")
    assert_close(data.line_sqrt_sigma, limma["line"].iloc[:2], 1e-8, what="prior line")


def test_sa_plot_matches_limma_trend_robust(bladder_fit) -> None:
    result = manylm.ebayes(bladder_fit, trend=True, robust=True)
    data = sa_trend(result, max_points=10**6)
    limma = read_reference("report/sa_trend_robust.tsv.gz")
    assert data.robust and data.n_outliers == int(limma["outlier"].sum())
    order = np.argsort(limma["x"].to_numpy(), kind="stable")
    line = np.interp(data.line_mean, limma["x"].to_numpy()[order],
                     limma["line"].to_numpy()[order])
    assert_close(data.line_sqrt_sigma, line, 1e-6, what="trended prior line")
    from manylm.report.sa_plot import variance_outlier_fdr

    fdr = variance_outlier_fdr(bladder_fit.residual_variance, bladder_fit.df_residual,
                               np.asarray(result.s2_prior), np.asarray(result.df_prior))
    # The robust prior df comes from an iterative fit (limma: uniroot, tol 1e-8).
    assert_close(fdr, limma["outlier_fdr"], 1e-5, what="outlier FDR")


def test_sa_plot_marks_outliers_and_draws_the_line(bladder_fit) -> None:
    pytest.importorskip("matplotlib")
    result = manylm.ebayes(bladder_fit, trend=True, robust=True)
    data = sa_trend(result, max_points=500)
    assert 500 <= data.n_drawn <= 500 + 300 + data.n_outliers
    axes = plot_sa_trend(data).axes[0]
    prior = next(line for line in axes.get_lines() if line.get_label() == "prior sqrt(s0)")
    np.testing.assert_allclose(prior.get_ydata(), data.line_sqrt_sigma)
    assert axes.get_ylabel() == "sqrt(residual sd)"
    assert "of 2,026 points drawn" in data.caption


def test_sa_plot_needs_a_moderated_fit() -> None:
    with pytest.raises(InputError, match="ModeratedFit"):
        sa_trend(object())


def test_voom_trend() -> None:
    counts = read_matrix("tests/reference/inputs/pasilla_counts.tsv.gz")
    samples = read_sample_sheet("tests/reference/inputs/pasilla_samples.tsv")
    design = manylm.design_matrix("~ condition", samples)
    from manylm.counts import voom

    result = voom(counts[design.sample_ids], design)
    data = voom_trend(result, max_points=1000)
    present = np.isfinite(result.trend_x) & np.isfinite(result.trend_y)
    assert data.n == int(present.sum()) and data.n_drawn <= 1000 + 200
    np.testing.assert_allclose(data.sqrt_sd, result.trend_y[data.rows])
    assert np.all(np.diff(data.line_x) >= 0) and data.line_x.size <= 2000
    pytest.importorskip("matplotlib")
    axes = plot_voom_trend(data).axes[0]
    assert axes.get_xlabel() == "log2(count size + 0.5)"
    assert [line.get_label() for line in axes.get_lines()] == ["genes", "lowess trend"]
    with pytest.raises(InputError, match="voom"):
        voom_trend(object())
