"""Surrogate variables for a fit: estimated from its design, added to it as adjustment variables.

``manylm fit ... --surrogates K|auto`` tests some coefficients of a design. The surrogate
variables are estimated by sva with that design as the full model and the design without the
tested coefficients as the null model (Leek & Storey 2007: the null model holds the adjustment
variables), then appended to the design, which is refitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from manylm.confounders.sva import sva
from manylm.design import Design, resolve_tests
from manylm.errors import DesignError

__all__ = ["design_with_surrogates", "estimate_surrogates_for_design"]


def estimate_surrogates_for_design(
    expression: Any,
    design: Design,
    tested: Sequence[str],
    n_sv: int | str = "auto",
    *,
    method: str = "be",
    seed: int | None = None,
    algorithm: str = "irw",
    iterations: int = 5,
    block_rows: int | None = None,
) -> tuple[pd.DataFrame, int]:
    """Surrogate variables for testing ``tested`` in ``design``.

    Parameters
    ----------
    expression : DataFrame or array of shape (n_features, n_samples)
        The data the fit will use (log-expression, log-CPM...); columns matched to
        ``design.sample_ids`` (by ID for a DataFrame, by position for an array).
    design : Design
        The fit's design: the full model.
    tested : sequence of str
        The coefficients or terms the fit tests (any spelling :func:`manylm.design.resolve_tests`
        accepts); the null model is the design without them.
    n_sv : int or "auto"
        Number of surrogate variables, or "auto" to estimate it with ``method``.
    method : {"be", "leek"}
        How "auto" chooses the number (R's ``num.sv``).
    seed : int, optional
        Seed of the "be" permutations.
    algorithm : {"irw", "two-step"}
        sva's algorithm.
    iterations : int
        Iterations of "irw".
    block_rows : int, optional
        Features per block.

    Returns
    -------
    surrogates : DataFrame of shape (n_samples, k)
        Indexed by sample ID, columns ``sv1 .. svK`` (no columns when k = 0).
    k : int
        The number of surrogate variables.
    """
    columns = resolve_tests(list(tested), design.coefficient_names, design.terms)
    kept = [j for j, name in enumerate(design.coefficient_names) if name not in columns]
    if not kept:
        raise DesignError("The design has no column besides the tested ones: surrogate "
                          "variables need a null model (at least the intercept).")
    null = Design.from_matrix(design.matrix[:, kept],
                              coefficient_names=[design.coefficient_names[j] for j in kept],
                              sample_ids=design.sample_ids)
    result = sva(expression, design, null, n_sv=n_sv, method=algorithm, iterations=iterations,
                 num_sv_method=method, seed=seed, block_rows=block_rows)
    return result.surrogates, result.n_sv


def design_with_surrogates(design: Design, surrogates: pd.DataFrame) -> Design:
    """The design with the surrogate variables appended as adjustment columns.

    Parameters
    ----------
    design : Design
    surrogates : DataFrame of shape (n_samples, k)
        Indexed by sample ID (all of the design's samples), columns named as they should appear
        (``sv1 .. svK``); each becomes its own term.

    Returns
    -------
    Design
    """
    clash = [c for c in surrogates.columns if c in design.coefficient_names]
    if clash:
        raise DesignError(f"Surrogate variable name(s) {', '.join(map(str, clash))} are already "
                          "design coefficients; rename them.")
    index = surrogates.index.astype(str)
    missing = [s for s in design.sample_ids if s not in index]
    if missing:
        raise DesignError(f"No surrogate variable values for sample(s) {', '.join(missing[:10])}.")
    values = surrogates.set_axis(index).loc[list(design.sample_ids)].to_numpy(dtype=np.float64)
    names = [str(c) for c in surrogates.columns]
    extended = Design.from_matrix(np.hstack([design.matrix, values]),
                                  coefficient_names=[*design.coefficient_names, *names],
                                  sample_ids=design.sample_ids)
    return Design(
        matrix=extended.matrix, coefficient_names=extended.coefficient_names,
        sample_ids=extended.sample_ids,
        terms={**design.terms, **{name: [name] for name in names}},
        dropped_samples=list(design.dropped_samples), formula=design.formula,
        estimable=extended.estimable,
    )
