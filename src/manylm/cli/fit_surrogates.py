"""``manylm fit --surrogates K|auto``: surrogate variables added to the design before the fit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from manylm.design import Design, contrast_matrix
from manylm.errors import InputError

if TYPE_CHECKING:
    from manylm.cli.fit_command import FitRequest

__all__ = ["add_surrogates", "parse_surrogate_count"]


def parse_surrogate_count(text: str) -> int | str:
    """``--surrogates`` value: a whole number >= 0 or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        count = int(text)
    except ValueError:
        count = -1
    if count < 0:
        raise InputError(f"--surrogates {text!r}: give a number of surrogate variables (0, 1, "
                         "2, ...) or 'auto'.")
    return count


def add_surrogates(
    request: FitRequest, expression: pd.DataFrame, design: Design, table_columns: list[str],
    contrasts: list[str],
) -> tuple[Design, pd.DataFrame, dict[str, Any]]:
    """Estimate surrogate variables for what the fit tests and append them to the design.

    The null model is the design without the tested coefficients (for contrasts: every
    coefficient a contrast involves). Returns the new design, the surrogate variables (samples x
    sv1..svK, possibly no columns) and what to record.
    """
    from manylm.confounders.surrogates_for_fit import (
        design_with_surrogates,
        estimate_surrogates_for_design,
    )

    assert request.surrogates is not None
    count = parse_surrogate_count(str(request.surrogates))
    if contrasts:
        matrix = contrast_matrix(contrasts, design.coefficient_names)
        involved = np.abs(matrix.to_numpy()).sum(axis=1) > 0
        tested = [name for name, used in zip(design.coefficient_names, involved, strict=True)
                  if used]
    else:
        tested = list(table_columns)
    if count == 0:
        surrogates = pd.DataFrame(index=pd.Index(design.sample_ids, name="sample"))
        found = 0
    else:
        surrogates, found = estimate_surrogates_for_design(
            expression, design, tested, count, method=request.surrogate_method,
            seed=request.seed)
    record = {"requested": count, "n_sv": found, "num_sv_method": request.surrogate_method,
              "seed": request.seed, "null_model_drops": tested}
    if found == 0:
        return design, surrogates, record
    surrogates.index.name = "sample"
    return design_with_surrogates(design, surrogates), surrogates, record
