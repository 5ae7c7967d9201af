"""The HTML report of a ``manylm fit`` run: built right after the fit (``--report``) or later
from its run record (``manylm report RUN.json``), which re-runs the recorded request."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from manylm.errors import InputError

if TYPE_CHECKING:
    from manylm.cli.fit_command import FitOutcome
    from manylm.report import ReportInputs

__all__ = ["report_covariates", "report_inputs_from_outcome", "report_inputs_from_run_record"]


def report_inputs_from_outcome(outcome: FitOutcome) -> ReportInputs:
    """What the report shows, from a run analysed with ``keep_residuals=True``."""
    from manylm.confounders.residual_structure import residual_components
    from manylm.inference.qvalue import qvalue
    from manylm.report import ReportInputs

    fit, result = outcome.fit, outcome.result
    covariates = report_covariates(outcome.sheet, outcome.request.design)
    surrogates = [c for c in covariates.columns if re.fullmatch(r"sv\d+", str(c))]
    structure = None
    if fit.residuals is not None and covariates.shape[1] and fit.residuals.shape[1] > 2:
        residuals = pd.DataFrame(fit.residuals, index=fit.feature_ids,
                                 columns=list(outcome.design.sample_ids))
        structure = residual_components(residuals, covariates)
    pi0 = q_values = None
    if outcome.q_values is not None:  # --qvalue: the table has them; only pi0 is needed
        pi0 = outcome.q_values.pi0
    elif len(outcome.table_columns) == 1:
        j = list(fit.coefficient_names).index(outcome.table_columns[0])
        found = qvalue(result.p_value_of(j))
        pi0, q_values = found.pi0, found.q_values
    return ReportInputs(
        run_record=outcome.record, samples=outcome.sheet, result=result,
        table=outcome.table, tested=list(outcome.table_columns),
        expression=outcome.expression, residual_structure=structure, voom=outcome.voom,
        pi0=pi0, q_values=q_values, design_columns=list(outcome.design.coefficient_names),
        surrogates=surrogates,
    )


def report_inputs_from_run_record(record: dict[str, Any], run_json_path: Path) -> ReportInputs:
    """Re-run the analysis a run record describes (its ``request``) and build the report's data.

    Relative input paths are taken relative to the run record's folder. Nothing is written.
    """
    from manylm.cli.fit_command import FitRequest, analyse

    stored = record.get("request")
    if not isinstance(stored, dict):
        raise InputError(
            f"{run_json_path}: this run record does not say how the analysis was run (no "
            "'request'; it was written by an older manylm). Re-run 'manylm fit ... --report "
            "FILE.html' instead."
        )
    known = {f.name for f in dataclasses.fields(FitRequest)}
    fields = {k: v for k, v in stored.items() if k in known}
    for name in ("expression", "samples", "weights"):
        if fields.get(name) and not Path(fields[name]).is_absolute():
            fields[name] = str(run_json_path.parent / fields[name])
    request = FitRequest(**{**fields, "out": None, "quiet": True})
    outcome = analyse(request, keep_residuals=True)
    outcome.record = record  # report the run as recorded (timings, notices, versions)
    return report_inputs_from_outcome(outcome)


def report_covariates(sheet: pd.DataFrame, formula: str) -> pd.DataFrame:
    """Sample-sheet columns to relate residual components to.

    Columns the formula wraps in ``C()`` are factors; text columns with a distinct value per
    sample (names, IDs) and constant columns are left out.
    """
    as_factor = set(re.findall(r"C\(\s*([A-Za-z_][A-Za-z0-9_.]*)", formula))
    columns: dict[str, pd.Series] = {}
    for name in sheet.columns:
        column = sheet[name]
        distinct = column.nunique(dropna=True)
        if distinct < 2:
            continue
        numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        if name in as_factor or not numeric:
            if distinct >= len(column.dropna()):
                continue
            columns[str(name)] = column.astype("category")
        else:
            columns[str(name)] = column.astype(np.float64)
    return pd.DataFrame(columns, index=sheet.index)
