"""The streaming engine against R limma 3.54.1 directly (the references of test_limma_parity).

Each table is computed by ``fit_streaming`` in small blocks with the summaries spilled to
files, and compared with limma's ``topTable`` to the same tolerances as the in-memory engine:
relative 1e-8, robust 1e-6.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from manylm.engine import fit_streaming
from reference_data import read_reference
from test_limma_parity import CORE, F_NAMES, ROBUST, bladder, compare_top, r_design

CANCER = "cancerCancer"


def stream(data: pd.DataFrame, case: str, coef: Any, **options: Any) -> pd.DataFrame:
    result = fit_streaming(data, r_design(case), coef=coef, block_rows=1500, spill=True,
                           **options)
    assert result.table is not None
    return result.table


@pytest.mark.parametrize(("case", "options", "rtol"), [
    ("dense", {}, CORE),
    ("trend", {"trend": True}, CORE),
    ("robust", {"robust": True}, ROBUST),
    ("trend_robust", {"trend": True, "robust": True}, ROBUST),
])
def test_dense_moderation(case: str, options: dict[str, bool], rtol: float) -> None:
    data = bladder()
    compare_top(stream(data, case, CANCER, sort_by="none", **options), case, CANCER, rtol)
    compare_top(stream(data, case, ["cancerBiopsy", CANCER], sort_by="none", **options), case,
                "cancer_F", rtol, coefficient_names=F_NAMES)


def test_sorted_by_p_with_by_adjustment() -> None:
    compare_top(stream(bladder(), "dense", CANCER, sort_by="p", adjust="BY"), "dense",
                "cancerCancer_sortP")


def test_confidence_level_and_treat() -> None:
    compare_top(stream(bladder(), "dense", CANCER, sort_by="none", confint=0.90), "dense",
                "cancerCancer_ci90")
    compare_top(stream(bladder(), "treat", CANCER, sort_by="none", treat_lfc=np.log2(1.2)),
                "treat", CANCER)


def test_missing_values_and_contrasts() -> None:
    data = bladder("bladder_missing_expr")
    compare_top(stream(data, "missing", CANCER, sort_by="none"), "missing", CANCER)
    compare_top(stream(data, "missing", ["cancerBiopsy", CANCER], sort_by="none"), "missing",
                "cancer_F", coefficient_names=F_NAMES)
    matrix = read_reference("limma/contrasts.contrast_matrix.tsv")
    matrix.index = r_design("missing_contrasts").coefficient_names
    compare_top(stream(data, "missing_contrasts", "CvB", contrasts=matrix, sort_by="none"),
                "missing_contrasts", "CvB")


def test_weights() -> None:
    data = bladder()
    compare_top(stream(data, "weights", CANCER, weights=bladder("bladder_weights"),
                       sort_by="none"), "weights", CANCER)
    sample_weights = read_reference("limma/array_weights.weights.tsv")["weight"].to_numpy()
    compare_top(stream(data, "array_weights", CANCER, weights=sample_weights, sort_by="none"),
                "array_weights", CANCER)


def test_edge_cases() -> None:
    data = read_reference("inputs/synth_edge_expr.tsv.gz")
    compare_top(stream(data, "synth_edge", "groupB", sort_by="none"), "synth_edge", "groupB")
    compare_top(stream(data, "synth_edge_robust", "groupB", robust=True, sort_by="none"),
                "synth_edge_robust", "groupB", ROBUST)
    small = read_reference("inputs/synth_small_expr.tsv.gz")
    compare_top(stream(small, "synth_small", "groupB", sort_by="none"), "synth_small", "groupB")
