"""The run record of ``manylm fit``: what was read, how it was modelled, what came out."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import manylm
from manylm.design import Design
from manylm.io import file_fingerprint, package_versions

if TYPE_CHECKING:
    from manylm.cli.fit_command import FitRequest

__all__ = ["build_run_record"]


def build_run_record(request: FitRequest, expression: pd.DataFrame, design: Design,
                sheet: pd.DataFrame, result: manylm.ModeratedFit, tested: list[str],
                notices: list[str], timings: dict[str, float]) -> dict[str, Any]:
    checksum = True if request.checksum else None  # None: by size (file_fingerprint)
    inputs = {"expression": _fingerprint(request.expression, checksum),
              "samples": _fingerprint(request.samples, checksum)}
    if request.weights:
        inputs["weights"] = _fingerprint(request.weights, checksum)
    prior: dict[str, Any] = {}
    if result.moderated:
        prior = {
            "df_prior": _summary(result.df_prior),
            "s2_prior": _summary(result.s2_prior),
        }
    return {
        "command": "fit",
        "argv": sys.argv[1:],
        "inputs": inputs,
        "n_features": int(expression.shape[0]),
        "samples": {
            "used": list(design.sample_ids),
            "dropped_missing_covariates": list(design.dropped_samples),
            "not_in_expression": [s for s in sheet.index if s not in expression.columns],
        },
        "design": {
            "formula": request.design,
            "references": request.references,
            "coefficients": list(design.coefficient_names),
            "non_estimable": design.non_estimable,
            "terms": design.terms,
        },
        "tests": tested,
        "contrasts": request.contrasts,
        "options": {
            "trend": request.trend, "robust": request.robust, "treat_lfc": request.treat_lfc,
            "moderation": request.moderate, "adjust": request.adjust, "sort": request.sort,
            "confint": request.confint, "weights": request.weights, "qvalue": request.qvalue,
        },
        "prior": prior,
        "output": None if request.out in (None, "-") else str(Path(request.out).resolve()),
        "notices": notices,
        "versions": package_versions(),
        "timings_seconds": {k: round(v, 4) for k, v in timings.items()},
        "cpu_count": os.cpu_count(),
        "request": _request_record(request),
    }


def _fingerprint(path: str, checksum: bool | None) -> dict[str, Any]:
    """:func:`~manylm.io.file_fingerprint`, or what could not be read and why.

    A streamed run builds the record while it fits, after reading its inputs: one that cannot
    be read again by then (moved, removed, made unreadable after it was read) is said so in the
    record, rather than failing a run whose table is complete (the table and its record are
    written together: :func:`manylm.io.atomic.committed_together`).
    """
    try:
        return file_fingerprint(path, checksum=checksum)
    except OSError as error:
        return {"path": str(Path(path).absolute()), "sha256": None,
                "unreadable": f"could not be read again for the record: "
                              f"{error.strerror or error}"}


def _summary(value: Any) -> Any:
    array = np.asarray(value, dtype=float)
    if array.ndim == 0:
        return float(array)
    return {"min": float(np.nanmin(array)), "median": float(np.nanmedian(array)),
            "max": float(np.nanmax(array))}


def _request_record(request: FitRequest) -> dict[str, Any]:
    """The request with absolute input paths: enough to re-run the analysis (manylm report)."""
    fields = dataclasses.asdict(request)
    for name in ("expression", "samples", "weights"):
        if fields.get(name):
            fields[name] = str(Path(fields[name]).absolute())
    return fields
