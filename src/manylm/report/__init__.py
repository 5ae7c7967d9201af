"""Diagnostics of many fits at once and the self-contained HTML report.

Every diagnostic is a function that returns data and a plot function that returns a matplotlib
Figure and accepts ``ax=`` (matplotlib is imported only when a plot is drawn): p-value histogram
and QQ plot, volcano, mean-difference, SA plot, voom's trend, residual components against the
sample variables, distribution of estimates, sample MDS. :func:`render_report` puts them, the
run record, the sample sheet, the top table and plain-language notes in one HTML file.
"""

from manylm.report.coefficient_stats import CoefficientStatistics, coefficient_statistics
from manylm.report.estimates import (
    EstimateDistribution,
    estimate_distribution,
    plot_estimate_distribution,
)
from manylm.report.html import render_report, write_report
from manylm.report.inputs import ReportInputs
from manylm.report.mds import SampleMDS, plot_sample_mds, sample_mds
from manylm.report.mean_difference import MeanDifference, mean_difference, plot_mean_difference
from manylm.report.notes import (
    Note,
    pvalue_shape_notes,
    residual_df_notes,
    residual_structure_notes,
    significance_notes,
)
from manylm.report.pvalue_plots import (
    PValueHistogram,
    PValueQQ,
    plot_pvalue_histogram,
    plot_pvalue_qq,
    pvalue_histogram,
    pvalue_qq,
)
from manylm.report.residual_heatmap import (
    ResidualAssociation,
    plot_residual_association,
    residual_association,
)
from manylm.report.sa_plot import SATrend, plot_sa_trend, sa_trend
from manylm.report.thinning import thin_points
from manylm.report.volcano import Volcano, plot_volcano, volcano
from manylm.report.voom_trend import VoomTrend, plot_voom_trend, voom_trend

__all__ = [
    "CoefficientStatistics",
    "EstimateDistribution",
    "MeanDifference",
    "Note",
    "PValueHistogram",
    "PValueQQ",
    "ReportInputs",
    "ResidualAssociation",
    "SATrend",
    "SampleMDS",
    "Volcano",
    "VoomTrend",
    "coefficient_statistics",
    "estimate_distribution",
    "mean_difference",
    "plot_estimate_distribution",
    "plot_mean_difference",
    "plot_pvalue_histogram",
    "plot_pvalue_qq",
    "plot_residual_association",
    "plot_sa_trend",
    "plot_sample_mds",
    "plot_volcano",
    "plot_voom_trend",
    "pvalue_histogram",
    "pvalue_qq",
    "pvalue_shape_notes",
    "render_report",
    "residual_association",
    "residual_df_notes",
    "residual_structure_notes",
    "sa_trend",
    "sample_mds",
    "significance_notes",
    "thin_points",
    "volcano",
    "voom_trend",
    "write_report",
]
