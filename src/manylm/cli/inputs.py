"""Turning the files ``manylm fit`` reads into what the model needs.

Read counts become log-CPM (with voom weights), weights files are aligned with the expression
matrix, and the block column is checked; each step says what it did in the run record.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from manylm.counts import (
    VoomResult,
    check_counts,
    cpm,
    filter_by_expr,
    norm_factors,
    voom,
    voom_with_quality_weights,
)
from manylm.design import Design
from manylm.errors import InputError, ManylmWarning
from manylm.fit.block import refuse_bad_weights
from manylm.io._ids import quote_ids

if TYPE_CHECKING:
    from manylm.cli.fit_command import FitRequest

__all__ = ["align_weights", "block_labels", "prepare_counts"]


def prepare_counts(
    expression: pd.DataFrame, design: Design, request: FitRequest
) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, Any], VoomResult | None]:
    """Counts to log-CPM (and voom weights), after filtering and normalisation.

    Returns the values to fit, their weights (voom) or None, what was done (for the run record)
    and the voom result (its trend, for the report) or None.
    """
    check_counts(expression, source=request.expression)
    counts = expression
    n_before = counts.shape[0]
    if request.filter:
        keep = filter_by_expr(counts.to_numpy(), design=design.matrix)
        if not keep.any():
            raise InputError(
                f"{request.expression}: no gene passes the expression filter (--filter): check "
                "that the matrix holds raw counts, or drop --filter."
            )
        counts = counts.loc[keep]
    sizes = counts.to_numpy(dtype=np.float64).sum(axis=0)
    method = request.normalize or "TMM"
    factors = norm_factors(counts.to_numpy(), method=method, lib_size=sizes)
    effective = sizes * factors
    record: dict[str, Any] = {
        "counts": True, "normalization": method,
        "library_sizes": dict(zip(map(str, counts.columns), sizes.tolist(), strict=True)),
        "norm_factors": dict(zip(map(str, counts.columns), factors.tolist(), strict=True)),
        "filter": request.filter, "features_before_filter": n_before,
        "features_dropped_by_filter": n_before - counts.shape[0],
    }
    if request.filter:
        message = (f"--filter kept {counts.shape[0]} of {n_before} features "
                   f"({n_before - counts.shape[0]} dropped for low counts).")
        warnings.warn(message, ManylmWarning, stacklevel=2)
    if request.voom and request.quality_weights:
        result = voom_with_quality_weights(counts, design, lib_size=effective)
        record["voom"] = True
        assert result.sample_weights is not None
        record["quality_weights"] = dict(zip(map(str, result.sample_weights.index),
                                             result.sample_weights.round(6).tolist(),
                                             strict=True))
        return result.expression, result.weights, record, result
    if request.voom:
        result = voom(counts, design, lib_size=effective)
        record["voom"] = True
        return result.expression, result.weights, record, result
    log_cpm = pd.DataFrame(cpm(counts.to_numpy(), effective, log=True), index=counts.index,
                           columns=counts.columns)
    record["log_cpm_prior_count"] = 2.0
    return log_cpm, None, record, None



def block_labels(sheet: pd.DataFrame, design: Design, request: FitRequest) -> pd.Series | None:
    if request.block is None:
        return None
    if request.block not in sheet.columns:
        raise InputError(
            f"--block {request.block!r} is not a column of {request.samples}. Columns: "
            f"{', '.join(map(str, sheet.columns))}."
        )
    labels = sheet.loc[list(design.sample_ids), request.block]
    missing = [str(s) for s in labels.index[labels.isna()]]
    if missing:
        raise InputError(
            f"--block {request.block}: no value for sample(s) {', '.join(missing[:10])}; give "
            "every sample a block."
        )
    return labels.astype(str)



def align_weights(weights: pd.DataFrame, expression: pd.DataFrame, path: str) -> pd.DataFrame:
    # in the matrix's order, not sorted (g0, g1, g10, g100...)
    missing_features = expression.index[~expression.index.isin(weights.index)]
    missing_samples = expression.columns[~expression.columns.isin(weights.columns)]
    if len(missing_features) or len(missing_samples):
        what = [f"{len(missing):,} {noun}(s) ({quote_ids(list(missing), 5)})"
                for noun, missing in (("feature", missing_features), ("sample", missing_samples))
                if len(missing)]
        raise InputError(
            f"{path}: no weights for {' and '.join(what)}; the weights file needs every feature "
            "and sample of the expression matrix."
        )
    aligned = weights.loc[expression.index, expression.columns]
    # the cells the fit uses: a missing weight among them is named with the file here
    refuse_bad_weights(aligned.to_numpy(), 0, aligned.index, list(aligned.columns), source=path)
    return aligned
