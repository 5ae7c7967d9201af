"""The report's diagnostics: each computed from the report inputs, drawn, and encoded as PNG."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.errors import InputError
from manylm.inference.adjust import p_adjust
from manylm.report import notes as trouble
from manylm.report.coefficient_stats import CoefficientStatistics, coefficient_statistics
from manylm.report.estimates import estimate_distribution, plot_estimate_distribution
from manylm.report.inputs import ReportInputs
from manylm.report.mds import plot_sample_mds, sample_mds
from manylm.report.mean_difference import mean_difference, plot_mean_difference
from manylm.report.pvalue_plots import (
    plot_pvalue_histogram,
    plot_pvalue_qq,
    pvalue_histogram,
    pvalue_qq,
)
from manylm.report.residual_heatmap import plot_residual_association, residual_association
from manylm.report.sa_plot import plot_sa_trend, sa_trend
from manylm.report.volcano import plot_volcano, volcano
from manylm.report.voom_trend import plot_voom_trend, voom_trend

__all__ = ["Diagnostic", "build_diagnostics", "figure_png", "test_p_values"]

_MAX_COEFFICIENT_PLOTS = 4  # volcano and MD plots for at most this many tested coefficients


@dataclass(frozen=True)
class Diagnostic:
    """One figure of the report.

    Attributes
    ----------
    key : str
        HTML anchor.
    title, caption : str
    png : bytes or None
        The image; None when it could not be drawn (``problem`` says why).
    problem : str or None
    """

    key: str
    title: str
    caption: str
    png: bytes | None = None
    problem: str | None = None

    @property
    def data_uri(self) -> str:
        assert self.png is not None
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def figure_png(figure: Any, *, dpi: int = 96) -> bytes:
    """PNG bytes of a matplotlib figure, without timestamps or software tags (reproducible)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def _can_draw() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_p_values(inputs: ReportInputs) -> tuple[str, NDArray[np.float64]]:
    """Label and p-values of the test the table reports (t for one coefficient, else F)."""
    result = inputs.result
    names = list(result.coefficient_names)
    positions = [names.index(t) for t in inputs.tested]
    if len(positions) == 1:
        return inputs.tested[0], np.asarray(result.p_value_of(positions[0]), dtype=np.float64)
    label = "F test of " + ", ".join(inputs.tested)
    return label, np.asarray(result.f_test(positions)[1], dtype=np.float64)


def build_diagnostics(inputs: ReportInputs, adjust: str) -> tuple[list[Diagnostic],
                                                                  list[trouble.Note]]:
    """Compute every diagnostic the inputs allow, draw them, and collect the trouble notes.

    Parameters
    ----------
    inputs : ReportInputs
    adjust : str
        p-value adjustment for significance.

    Returns
    -------
    (list of Diagnostic, list of Note)
    """
    draw = _can_draw()
    diagnostics: list[Diagnostic] = []
    notes: list[trouble.Note] = [trouble.Note("warning", "inputs", text)
                                 for text in inputs.extra_notes]
    if not draw:
        notes.append(trouble.Note("info", "plots", (
            "matplotlib is not installed, so the report has no plots: pip install "
            "'manylm[report]'.")))

    def add(key: str, title: str, compute: Callable[[], tuple[Any, str]]) -> None:
        try:
            figure, caption = compute()
        except InputError as error:
            diagnostics.append(Diagnostic(key, title, "", problem=str(error)))
            return
        diagnostics.append(Diagnostic(key, title, caption, png=figure_png(figure)))
        figure.clear()

    label, p_values = test_p_values(inputs)
    histogram = pvalue_histogram(p_values, pi0=inputs.pi0)
    notes.extend(trouble.pvalue_shape_notes(histogram, label=label))
    adjusted = {label: p_adjust(p_values, adjust)}
    statistics: list[CoefficientStatistics] = [
        coefficient_statistics(inputs.result, name, adjust=adjust)
        for name in inputs.tested[:_MAX_COEFFICIENT_PLOTS]
    ]
    if len(inputs.tested) > 1:
        adjusted.update({s.name: s.adj_p_value for s in statistics})
    notes.extend(trouble.significance_notes(adjusted, significance=inputs.significance))
    fit = inputs.result.fit
    n_samples = len(getattr(fit.design, "sample_ids", [])) or None
    notes.extend(trouble.residual_df_notes(
        fit.df_residual, n_samples=n_samples,
        df_prior=inputs.result.df_prior if inputs.result.moderated else None))
    association = None
    if inputs.residual_structure is not None:
        association = residual_association(inputs.residual_structure)
        notes.extend(trouble.residual_structure_notes(association,
                                                      surrogates=inputs.surrogates))
    if not draw:
        return diagnostics, notes

    pi0_text = f" The dashed line is pi0 = {inputs.pi0:.3f}, the estimated share of true " \
        "nulls." if inputs.pi0 is not None else ""
    add("pvalue-histogram", f"p-value histogram ({label})", lambda: (
        plot_pvalue_histogram(histogram, title=f"p-values: {_short(label)}"),
        f"{histogram.n:,} p-values in {histogram.counts.size} bins"
        f"{f'; {histogram.n_missing:,} missing' if histogram.n_missing else ''}. Flat at the "
        f"null level with a peak near 0 is the healthy shape.{pi0_text}"))

    def qq() -> tuple[Any, str]:
        data = pvalue_qq(p_values, max_points=inputs.max_points)
        return (plot_pvalue_qq(data, title=f"QQ: {_short(label)}"),
                f"{data.caption} Genomic inflation factor {data.inflation:.2f} (1 means the "
                "bulk of the p-values behaves as null).")
    add("pvalue-qq", f"QQ plot of p-values ({label})", qq)

    for index, stats in enumerate(statistics):
        def plot_volcano_of(stats: CoefficientStatistics = stats) -> tuple[Any, str]:
            data = volcano(stats, significance=inputs.significance,
                           max_points=inputs.max_points)
            return plot_volcano(data), (f"{data.caption} {data.n_significant:,} features "
                                        f"with adjusted p <= {inputs.significance:g} ({adjust}).")

        def plot_md_of(stats: CoefficientStatistics = stats) -> tuple[Any, str]:
            data = mean_difference(stats, significance=inputs.significance,
                                   max_points=inputs.max_points)
            return plot_mean_difference(data), (f"{data.caption} {data.n_up:,} up, "
                                                f"{data.n_down:,} down.")
        add(f"volcano-{index}", f"Volcano plot: {stats.name}", plot_volcano_of)
        add(f"md-{index}", f"Mean-difference plot: {stats.name}", plot_md_of)

    def sa() -> tuple[Any, str]:
        data = sa_trend(inputs.result, max_points=inputs.max_points)
        prior = ("the fitted prior (a trend in the mean)" if data.line_mean is not None
                 and data.line_mean.size > 2 else "the fitted prior")
        outliers = f" {data.n_outliers:,} variance outliers (robust prior)." if data.robust \
            else ""
        return plot_sa_trend(data), f"{data.caption} The line is {prior}.{outliers}"
    add("sa-plot", "Residual standard deviation against mean (SA plot)", sa)

    if inputs.voom is not None:
        def voom_plot() -> tuple[Any, str]:
            data = voom_trend(inputs.voom, max_points=inputs.max_points)
            return plot_voom_trend(data), data.caption
        add("voom-trend", "voom mean-variance trend", voom_plot)

    if association is not None:
        chosen = association
        add("residual-structure", "Residual principal components against sample variables",
            lambda: (plot_residual_association(chosen),
                     "R^2 of each residual component's scores against each variable; * marks "
                     "p < 0.001. Components are labelled with their share of the residual "
                     "variance."))

    def estimates() -> tuple[Any, str]:
        data = estimate_distribution(inputs.result, list(inputs.tested))
        clipped = int(data.summary["n_clipped"].sum())
        beyond = f" ({clipped:,} values beyond them are counted in the end bins)" if clipped \
            else ""
        return plot_estimate_distribution(data), (
            f"Estimates of {', '.join(inputs.tested)} over all features; bins span the 0.5% to "
            f"99.5% quantiles{beyond}.")
    add("estimates", "Distribution of estimates", estimates)

    if inputs.expression is not None:
        expression = inputs.expression

        def mds() -> tuple[Any, str]:
            data = sample_mds(expression)
            groups = _mds_groups(inputs)
            coloured = f" Coloured by {groups.name}." if groups is not None else ""
            return plot_sample_mds(data, groups=groups), (
                f"Classical MDS of the samples on leading log-fold-change distances (the "
                f"{data.top} largest squared differences per pair, over "
                f"{data.n_features_used:,} features with no missing value), as limma's "
                f"plotMDS.{coloured}")
        add("mds", "Sample MDS", mds)
    return diagnostics, notes


def _mds_groups(inputs: ReportInputs) -> pd.Series | None:
    sheet = inputs.samples
    column = inputs.color_by
    if column is None:
        formula = str(inputs.run_record.get("design", {}).get("formula") or "")
        for candidate in sheet.columns:
            values = sheet[candidate]
            categorical = not pd.api.types.is_numeric_dtype(values) or values.nunique() <= 8
            if str(candidate) in formula and categorical and values.nunique() > 1:
                column = str(candidate)
                break
    if column is None or column not in sheet.columns:
        return None
    return sheet[column].rename(column)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

