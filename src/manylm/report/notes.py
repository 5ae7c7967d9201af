"""Plain-language notes that flag trouble in an analysis (pure data in, messages out).

Each check looks at numbers the diagnostics already computed and, when something looks wrong,
says what was seen and what usually causes it. The rules and thresholds are the usual reading
of these plots (e.g. Breheny, Stromberg & Lambert 2018 on p-value histograms; limma's user's
guide on residual degrees of freedom); they are deliberately conservative, to flag only clear
trouble.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from manylm.report.pvalue_plots import PValueHistogram
from manylm.report.residual_heatmap import ResidualAssociation

__all__ = ["Note", "pvalue_shape_notes", "residual_df_notes", "residual_structure_notes",
           "significance_notes"]

_MIN_PVALUES = 200  # fewer p-values than this: the histogram's shape is mostly noise


@dataclass(frozen=True)
class Note:
    """One finding for the reader.

    Attributes
    ----------
    level : {"warning", "info"}
    topic : str
        Short heading, e.g. ``"p-value histogram"``.
    message : str
        What was seen, what it usually means, what to do.
    """

    level: str
    topic: str
    message: str


def _elevated(count: float, baseline: float, factor: float) -> bool:
    """``count`` clearly above ``factor`` x ``baseline``, beyond Poisson noise (4 sd)."""
    return count > factor * baseline and count - baseline > 4 * np.sqrt(max(baseline, 1.0))


def pvalue_shape_notes(histogram: PValueHistogram, *, label: str = "") -> list[Note]:
    """Flag a spike of p-values near 1 and a U-shaped histogram.

    Parameters
    ----------
    histogram : PValueHistogram
        Preferably with 20 bins (any number of at least 10 works).
    label : str
        Which test the p-values belong to, for the message.

    Returns
    -------
    list of Note
    """
    n_bins = histogram.counts.size
    if histogram.n < _MIN_PVALUES or n_bins < 10:
        return []
    counts = histogram.counts.astype(np.float64)
    middle = counts[int(0.3 * n_bins):int(0.8 * n_bins)]
    baseline = float(middle.mean())
    first, last = counts[0], counts[-1]
    # Below the last bin: a U rises gradually towards 1, a spike sits in the last bin alone.
    shoulder = float(counts[-max(2, n_bins // 5):-1].mean())
    where = f" ({label})" if label else ""
    share_last = 100 * last / histogram.n
    low_end = _elevated(first, baseline, 2.0)
    high_end = _elevated(shoulder, baseline, 1.3)
    if low_end and high_end:
        return [Note("warning", "p-value histogram", (
            f"The p-value histogram{where} is U-shaped: both the smallest and the largest "
            f"p-values are over-represented ({share_last:.1f}% of p-values are in the last "
            f"bin, {last / max(baseline, 1):.1f} times the level of the middle). The model's "
            "variance is probably wrong: an unmodelled covariate (batch), outlier samples, "
            "correlated samples (repeated measures: use --block), or a test whose groups differ "
            "in variance. Look at the residual components and the sample MDS plot."))]
    if _elevated(last, baseline, 2.0):
        return [Note("warning", "p-value histogram", (
            f"The p-value histogram{where} has a spike near 1: {share_last:.1f}% of p-values "
            f"are in the last bin, {last / max(baseline, 1):.1f} times the level of the middle. "
            "This usually comes from features with (nearly) constant values or many ties: low "
            "counts, values at a detection limit, features missing in a whole group. Filter "
            "such features before fitting (for counts: --filter) and check the design."))]
    return []


def residual_structure_notes(association: ResidualAssociation, *,
                             surrogates: Sequence[str] = (), min_r_squared: float = 0.3,
                             max_p_value: float = 1e-3,
                             min_variance: float = 0.05) -> list[Note]:
    """Flag residual components strongly tied to a known sample variable.

    A component of the residuals that follows a known variable (such as batch) means the
    model left that variable's effect in the residuals. Surrogate variables are estimated from
    the residual structure itself, so ties with them are expected and not flagged.

    Parameters
    ----------
    association : ResidualAssociation
    surrogates : list of str
        Names of surrogate-variable columns.
    min_r_squared, max_p_value : float
        How strong the tie must be.
    min_variance : float
        Only components carrying at least this share of the residual variance.

    Returns
    -------
    list of Note
    """
    notes = []
    known = [c for c in association.r_squared.columns if c not in set(surrogates)]
    shares = association.variance_explained.reindex(association.r_squared.index)
    for component, share in zip(association.r_squared.index,
                                shares.to_numpy(dtype=np.float64), strict=True):
        if not share >= min_variance:
            continue
        row = association.r_squared.loc[component, known].astype(float)
        strong = row[(row >= min_r_squared)
                     & (association.p_values.loc[component, known] <= max_p_value)]
        for variable, r_squared in strong.sort_values(ascending=False).items():
            p_value = association.p_values.loc[component].to_numpy(dtype=np.float64)[
                list(association.p_values.columns).index(variable)]
            notes.append(Note("warning", "residual structure", (
                f"Residual component {component} ({100 * share:.0f}% of the residual "
                f"variance) is strongly tied to {variable} (R^2 = {r_squared:.2f}, "
                f"p = {p_value:.2g}). The model leaves structure that follows {variable}: add "
                f"it to the design if it is a nuisance variable (e.g. '+ C({variable})'), or "
                "estimate surrogate variables (manylm sva).")))
    return notes


def residual_df_notes(df_residual: ArrayLike, *, n_samples: int | None = None,
                      df_prior: float | ArrayLike | None = None,
                      min_df: float = 4.0) -> list[Note]:
    """Flag too few residual degrees of freedom.

    Parameters
    ----------
    df_residual : array of shape (n_features,)
    n_samples : int, optional
        For the message.
    df_prior : float or array, optional
        The prior df of the moderation (it adds information to each variance).
    min_df : float
        Below this median residual df, flag.

    Returns
    -------
    list of Note
    """
    df = np.asarray(df_residual, dtype=np.float64)
    df = df[np.isfinite(df)]
    if df.size == 0:
        return []
    median = float(np.median(df))
    if median >= min_df:
        return []
    samples = f" with {n_samples} samples" if n_samples is not None else ""
    if median <= 0:
        return [Note("warning", "residual degrees of freedom", (
            f"No residual degrees of freedom{samples}: the design has as many coefficients "
            "as samples, so there is no estimate of the noise and no valid test. Use fewer "
            "coefficients or more samples."))]
    moderation = ""
    if df_prior is not None:
        prior = float(np.median(np.asarray(df_prior, dtype=np.float64)))
        moderation = (f" The moderation borrows {prior:.3g} prior degrees of freedom from "
                      "the other features, which helps, but the result leans on the prior.")
    return [Note("warning", "residual degrees of freedom", (
        f"Only {median:g} residual degree(s) of freedom per feature{samples}: each "
        "feature's variance rests on very few values, so tests have little power and are "
        f"sensitive to outliers.{moderation} Add samples, or drop coefficients you do not "
        "need."))]


def significance_notes(adj_p_values: Mapping[str, ArrayLike], *, significance: float = 0.05,
                       max_share: float = 0.5) -> list[Note]:
    """Flag tests for which most features are significant, and note those with none.

    Parameters
    ----------
    adj_p_values : mapping of test name to array of shape (n_features,)
    significance : float
        Adjusted p-value threshold.
    max_share : float
        Flag when more than this share of the features is significant.

    Returns
    -------
    list of Note
    """
    notes = []
    for name, values in adj_p_values.items():
        adjusted = np.asarray(values, dtype=np.float64)
        adjusted = adjusted[~np.isnan(adjusted)]
        if adjusted.size == 0:
            continue
        share = float(np.mean(adjusted <= significance))
        if share > max_share:
            notes.append(Note("warning", "number of significant features", (
                f"{100 * share:.0f}% of the features are significant for {name} (adjusted p "
                f"<= {significance:g}). That is unusual for a comparison of conditions: check "
                "that the tested coefficient is the one you meant (not the intercept, or a "
                "number in raw units), that the data are normalised, and that the groups are "
                "not confounded with batch.")))
        elif share == 0:
            notes.append(Note("info", "number of significant features", (
                f"No feature is significant for {name} at adjusted p <= {significance:g}.")))
    return notes
