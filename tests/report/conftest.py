"""Shared data of the report tests: the bladder subset fitted once, and one rendered report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the helpers beside this file

from report_data import (
    COEF,
    HOSTILE,
    HOSTILE_IMG,
    INPUTS,
    Bladder,
    structure_of,
)

import manylm
from manylm.io import read_matrix, read_sample_sheet


@pytest.fixture(scope="session")
def bladder() -> Bladder:
    """~ cancer on the bladder subset (batch left out on purpose: the residuals carry it).

    Two features are renamed to hostile HTML, one sample too.
    """
    expression = read_matrix(INPUTS / "bladder_expr.tsv.gz")
    samples = read_sample_sheet(INPUTS / "bladder_samples.tsv")
    samples = samples.astype({"batch": "category"})
    renamed = {expression.index[0]: HOSTILE, expression.index[1]: HOSTILE_IMG}
    expression = expression.rename(index=renamed)
    design = manylm.design_matrix("~ cancer", samples, reference={"cancer": "Normal"})
    expression = expression[list(design.sample_ids)]
    fit = manylm.lm_fit(expression, design, keep_residuals=True)
    result = manylm.ebayes(fit, trend=True, robust=True)
    # The hostile names must reach the top table: give them the smallest p-values.
    table = result.top_table(COEF).reset_index()
    return Bladder(expression, samples, design, fit, result, table)


@pytest.fixture(scope="session")
def report_inputs(bladder: Bladder) -> Any:
    from manylm.report import ReportInputs

    sample_ids = list(bladder.design.sample_ids)
    samples = bladder.samples.loc[sample_ids]
    samples = samples.rename(index={sample_ids[0]: "<b>sample&1</b>"})
    expression = bladder.expression.rename(columns={sample_ids[0]: "<b>sample&1</b>"})
    p = bladder.result.p_value_of(bladder.design.coefficient_names.index(COEF))
    record = {
        "command": "fit",
        "argv": ["fit", "bladder_expr.tsv.gz", "--samples", "bladder_samples.tsv",
                 "--design", "~ cancer", "--test", COEF, "--out", "res.tsv"],
        "inputs": {"expression": {"path": "/data/bladder_expr.tsv.gz", "size": 123,
                                  "sha256": "ab" * 32}},
        "design": {"formula": "~ cancer", "references": {"cancer": "Normal"},
                   "coefficients": list(bladder.design.coefficient_names)},
        "tests": [COEF],
        "options": {"adjust": "BH", "trend": True, "robust": True},
        "versions": {"manylm": manylm.__version__},
        "notices": [f"a notice about {HOSTILE}"],
    }
    return ReportInputs(run_record=record, samples=samples, result=bladder.result,
                        table=bladder.table, tested=[COEF], expression=expression,
                        residual_structure=structure_of(bladder), pi0=0.4,
                        q_values=np.minimum(1.0, p * 2), top_rows=3000)


@pytest.fixture(scope="session")
def report_html(report_inputs: Any) -> str:
    pytest.importorskip("matplotlib")
    from manylm.report import render_report

    return render_report(report_inputs)
