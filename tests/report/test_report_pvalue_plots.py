"""p-value histogram and QQ plot: their data and their labels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from manylm.errors import InputError
from manylm.report import plot_pvalue_histogram, plot_pvalue_qq, pvalue_histogram, pvalue_qq


def test_histogram_counts_density_and_missing() -> None:
    p = np.array([0.0, 0.01, 0.049, 0.05, 0.5, 0.99, 1.0, np.nan])
    histogram = pvalue_histogram(p, pi0=0.7)
    assert histogram.counts.sum() == 7 and histogram.n == 7 and histogram.n_missing == 1
    assert histogram.counts[0] == 3 and histogram.counts[1] == 1 and histogram.counts[-1] == 2
    np.testing.assert_allclose(histogram.density, histogram.counts / (7 * 0.05))
    np.testing.assert_array_equal(histogram.counts, np.histogram(p[~np.isnan(p)],
                                                                 bins=histogram.edges)[0])


@pytest.mark.parametrize("bad", [[-0.1, 0.5], [0.5, 1.2]])
def test_histogram_rejects_values_outside_zero_one(bad: list[float]) -> None:
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        pvalue_histogram(bad)


def test_histogram_plot_has_bars_and_the_pi0_line() -> None:
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(1)
    histogram = pvalue_histogram(rng.uniform(size=1000), pi0=0.83, n_bins=10)
    figure = plot_pvalue_histogram(histogram)
    axes = figure.axes[0]
    assert len(axes.patches) == 10
    heights = [patch.get_height() for patch in axes.patches]
    np.testing.assert_allclose(heights, histogram.density)
    pi0_lines = [line for line in axes.get_lines() if line.get_label().startswith("pi0")]
    assert pi0_lines and np.allclose(pi0_lines[0].get_ydata(), 0.83)
    assert axes.get_xlabel() == "p-value" and axes.get_ylabel() == "density"


def test_histogram_plot_draws_on_given_axes() -> None:
    matplotlib = pytest.importorskip("matplotlib")
    figure = matplotlib.figure.Figure()
    axes = figure.add_subplot(1, 2, 2)
    assert plot_pvalue_histogram(pvalue_histogram([0.1, 0.2]), ax=axes) is figure
    assert len(axes.patches) == 20


def test_qq_points_band_and_inflation() -> None:
    rng = np.random.default_rng(2)
    p = rng.uniform(size=50_000)
    qq = pvalue_qq(p, max_points=1_000, keep_smallest=200)
    assert qq.n == 50_000 and qq.n_drawn == qq.expected.size <= 1_201
    np.testing.assert_allclose(qq.observed[:200], -np.log10(np.sort(p)[:200]))
    np.testing.assert_allclose(qq.expected[0], -np.log10(0.5 / 50_000))
    assert np.all(qq.band_low <= qq.expected + 1e-12) and np.all(qq.expected <= qq.band_high)
    expected_inflation = stats.chi2.isf(np.median(p), 1) / stats.chi2.ppf(0.5, 1)
    assert qq.inflation == pytest.approx(expected_inflation)
    assert abs(qq.inflation - 1) < 0.05
    assert "of 50,000 points drawn" in qq.caption


def test_qq_plot_labels() -> None:
    pytest.importorskip("matplotlib")
    qq = pvalue_qq(np.linspace(0.001, 1, 300))
    axes = plot_pvalue_qq(qq).axes[0]
    assert axes.get_xlabel() == "expected -log10(p)"
    assert axes.get_ylabel() == "observed -log10(p)"
    assert "inflation" in axes.get_title(loc="left")
    points = next(line for line in axes.get_lines() if line.get_label() == "p-values")
    np.testing.assert_allclose(points.get_ydata(), qq.observed)


def test_qq_needs_some_p_values() -> None:
    with pytest.raises(InputError, match="every p-value is missing"):
        pvalue_qq([np.nan, np.nan])
