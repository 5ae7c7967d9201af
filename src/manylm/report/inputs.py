"""What the HTML report is built from: one dataclass, filled by ``manylm fit --report``,
``manylm report RUN.json`` or by hand from Python."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from manylm.errors import InputError
from manylm.report.thinning import DEFAULT_MAX_POINTS

__all__ = ["ReportInputs", "check_report_inputs"]


@dataclass
class ReportInputs:
    """Everything one report shows.

    Attributes
    ----------
    run_record : mapping
        The run record of ``manylm fit`` (inputs with checksums, design, options, versions,
        timings); any mapping works, unknown keys are shown as they are.
    samples : DataFrame
        The sample sheet, indexed by sample ID (the samples used first).
    result : ModeratedFit
        The moderated (or ordinary) fit: ``manylm.ebayes(fit)``, ``treat`` or
        ``ordinary_statistics``.
    table : DataFrame
        The results table as written (``top_table(...)``, indexed by feature or with a
        ``feature`` column); the report shows its first ``top_rows`` rows by p-value.
    tested : list of str
        Coefficient (or contrast) names tested, as in ``result.coefficient_names``; several
        mean an F test.
    expression : DataFrame, optional
        The analysed values (features x samples, log scale) for the sample MDS plot.
    residual_structure : ResidualStructure, optional
        From ``manylm.confounders.residual_structure.residual_components`` (duck-typed:
        ``r_squared``, ``p_values``, ``variance_explained``).
    voom : VoomResult, optional
        For voom's mean-variance trend.
    pi0 : float, optional
        Proportion of true nulls (q-value), drawn on the p-value histogram.
    q_values : array or Series, optional
        One per feature of ``result`` (or indexed by feature); shown in the top table.
    design_columns : list of str, optional
        Design matrix column names (default: the fit's coefficient names).
    surrogates : list of str
        Names of surrogate-variable columns among the residual-structure variables.
    color_by : str, optional
        Sample-sheet column colouring the MDS plot (default: the first categorical column used
        by the design formula, else none).
    title : str
    significance : float
        Adjusted p-value threshold for highlighting and notes.
    adjust : str, optional
        p-value adjustment (default: the run record's option, else BH).
    top_rows : int
        Rows of the results table shown.
    max_points : int
        Non-significant points drawn per scatter plot (see :mod:`manylm.report.thinning`).
    extra_notes : list of str
        Further warnings to show first (e.g. inputs changed since the run).
    """

    run_record: Mapping[str, Any]
    samples: pd.DataFrame
    result: Any
    table: pd.DataFrame
    tested: Sequence[str]
    expression: pd.DataFrame | None = None
    residual_structure: Any = None
    voom: Any = None
    pi0: float | None = None
    q_values: Any = None
    design_columns: Sequence[str] | None = None
    surrogates: Sequence[str] = ()
    color_by: str | None = None
    title: str = "manylm report"
    significance: float = 0.05
    adjust: str | None = None
    top_rows: int = 300
    max_points: int = DEFAULT_MAX_POINTS
    extra_notes: Sequence[str] = field(default_factory=list)


def check_report_inputs(inputs: ReportInputs) -> None:
    """Raise :class:`InputError` naming what is wrong with ``inputs``."""
    if not isinstance(inputs, ReportInputs):
        raise InputError(f"render_report needs ReportInputs; got {type(inputs).__name__}.")
    if not isinstance(inputs.run_record, Mapping):
        raise InputError("ReportInputs.run_record must be a mapping (the run record JSON).")
    if not isinstance(inputs.samples, pd.DataFrame):
        raise InputError("ReportInputs.samples must be a DataFrame indexed by sample ID.")
    if not isinstance(inputs.table, pd.DataFrame):
        raise InputError("ReportInputs.table must be a DataFrame (the results table).")
    names = list(getattr(inputs.result, "coefficient_names", []))
    if not names or not hasattr(inputs.result, "p_value_of"):
        raise InputError("ReportInputs.result must be a ModeratedFit (from manylm.ebayes, treat "
                         f"or ordinary_statistics); got {type(inputs.result).__name__}.")
    tested = list(inputs.tested)
    if not tested:
        raise InputError("ReportInputs.tested is empty: name the coefficient(s) tested.")
    unknown = [t for t in tested if t not in names]
    if unknown:
        raise InputError(f"ReportInputs.tested names {', '.join(map(repr, unknown))}, not "
                         f"coefficients of the fit ({', '.join(names)}).")
    if not 0 < inputs.significance <= 1:
        raise InputError(f"ReportInputs.significance must be in (0, 1]; got "
                         f"{inputs.significance}.")
    if inputs.top_rows < 0 or inputs.max_points < 0:
        raise InputError("ReportInputs.top_rows and max_points must be >= 0.")
    if inputs.pi0 is not None and not 0 <= float(inputs.pi0) <= 1:
        raise InputError(f"ReportInputs.pi0 must be in [0, 1]; got {inputs.pi0}.")
    if inputs.q_values is not None and not isinstance(inputs.q_values, pd.Series):
        n_q = np.asarray(inputs.q_values).shape[0]
        n_features = len(inputs.result.feature_ids)
        if n_q != n_features:
            raise InputError(f"ReportInputs.q_values has {n_q} values for {n_features} "
                             "features; give one per feature (or a Series indexed by feature).")
    if inputs.expression is not None and not isinstance(inputs.expression, pd.DataFrame):
        raise InputError("ReportInputs.expression must be a features x samples DataFrame.")
