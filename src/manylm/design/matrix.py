"""The design matrix: from a formula and a sample sheet, or from a matrix the user gives.

Formulas are Wilkinson formulas evaluated by formulaic (coefficient names such as
``cancer[T.Cancer]``), after :func:`manylm.design.safe_formula.parse_formula` has checked that
they cannot run code. Samples with a missing value in a variable the formula uses are dropped,
with a warning naming them, as R's ``model.matrix`` does silently.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from formulaic import model_matrix
from numpy.typing import NDArray

from manylm.design.estimability import estimable_columns
from manylm.design.safe_formula import evaluation_context, parse_formula
from manylm.errors import DesignError, FormulaError, ManylmWarning

__all__ = ["Design", "design_matrix"]


@dataclass(frozen=True)
class Design:
    """A design matrix with its coefficient names, samples and terms.

    Attributes
    ----------
    matrix : array of shape (n_samples, n_coefficients)
    coefficient_names : list of str
    sample_ids : list of str
        The samples the rows of ``matrix`` belong to (after dropping incomplete ones).
    terms : dict of str to list of str
        Each formula term and the coefficients it produced (``{"cancer": ["cancer[T.Biopsy]",
        "cancer[T.Cancer]"]}``); one term per column for a matrix given directly.
    dropped_samples : list of str
        Samples left out because a variable the formula uses is missing for them.
    formula : str or None
    estimable : array of bool, shape (n_coefficients,)
        Columns the design can estimate (limma's ``nonEstimable`` in reverse).
    """

    matrix: NDArray[np.float64]
    coefficient_names: list[str]
    sample_ids: list[str]
    terms: dict[str, list[str]]
    dropped_samples: list[str] = field(default_factory=list)
    formula: str | None = None
    estimable: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def n_samples(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_coefficients(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def rank(self) -> int:
        return int(self.estimable.sum())

    @property
    def non_estimable(self) -> list[str]:
        return [n for n, ok in zip(self.coefficient_names, self.estimable, strict=True) if not ok]

    def as_frame(self) -> pd.DataFrame:
        """The design as a samples x coefficients DataFrame."""
        return pd.DataFrame(
            self.matrix, index=pd.Index(self.sample_ids, name="sample"),
            columns=self.coefficient_names,
        )

    @classmethod
    def from_matrix(
        cls,
        matrix: NDArray[np.float64] | pd.DataFrame,
        *,
        coefficient_names: Sequence[str] | None = None,
        sample_ids: Sequence[str] | None = None,
    ) -> Design:
        """Wrap a design matrix given directly (samples in rows)."""
        if isinstance(matrix, pd.DataFrame):
            coefficient_names = coefficient_names or [str(c) for c in matrix.columns]
            sample_ids = sample_ids or [str(s) for s in matrix.index]
        try:
            values = np.asarray(matrix, dtype=np.float64)
        except (TypeError, ValueError):
            raise DesignError("The design matrix must be numeric.") from None
        if values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] == 0:
            raise DesignError(
                f"The design matrix must be 2-D (samples x coefficients); got shape {values.shape}."
            )
        if not np.all(np.isfinite(values)):
            rows = np.unique(np.nonzero(~np.isfinite(values))[0])
            raise DesignError(
                f"The design matrix has missing or infinite values in rows {rows[:10].tolist()}; "
                "drop those samples or fill the values."
            )
        names = list(coefficient_names) if coefficient_names is not None else [
            f"x{j + 1}" for j in range(values.shape[1])
        ]
        if len(names) != values.shape[1] or len(set(names)) != len(names):
            raise DesignError("Coefficient names must be unique, one per design column.")
        samples = [str(s) for s in sample_ids] if sample_ids is not None else [
            f"sample{i + 1}" for i in range(values.shape[0])
        ]
        if len(samples) != values.shape[0]:
            raise DesignError(
                f"{len(samples)} sample IDs given for a design with {values.shape[0]} rows."
            )
        design = cls(
            matrix=values, coefficient_names=names, sample_ids=samples,
            terms={name: [name] for name in names}, estimable=estimable_columns(values),
        )
        _warn_non_estimable(design)
        return design


def design_matrix(
    formula: str,
    samples: pd.DataFrame,
    *,
    reference: Mapping[str, object] | None = None,
    warn: bool = True,
) -> Design:
    """Build the design matrix of ``formula`` over the sample sheet ``samples``.

    Parameters
    ----------
    formula : str
        Right-hand-side Wilkinson formula, e.g. ``"~ cancer + C(batch)"``. Only column names,
        literals, arithmetic and known transforms (``C``, ``log``, ``scale``, ``poly``...) are
        allowed: a formula never runs code.
    samples : DataFrame
        One row per sample, indexed by sample ID.
    reference : mapping of column name to level, optional
        The reference (baseline) level of each factor, e.g. ``{"cancer": "Normal"}``; the default
        is the first level in sorted order (formulaic's and R's default).
    warn : bool
        Warn (:class:`~manylm.errors.ManylmWarning`) about dropped samples and non-estimable
        coefficients.

    Returns
    -------
    Design
    """
    if not isinstance(samples, pd.DataFrame):
        raise DesignError("The sample sheet must be a pandas DataFrame indexed by sample ID.")
    _, used_columns = parse_formula(formula, [str(c) for c in samples.columns])
    data = samples.copy()
    data.columns = [str(c) for c in data.columns]
    for column, level in (reference or {}).items():
        data[column] = _with_reference(data, str(column), level)
    # Q("name") may use columns parse_formula cannot see statically; those are checked by
    # formulaic itself, so only the statically used columns decide which samples are complete.
    incomplete = data[sorted(used_columns)].isna().any(axis=1) if used_columns else None
    dropped: list[str] = []
    if incomplete is not None and bool(incomplete.any()):
        dropped = [str(s) for s in data.index[incomplete.to_numpy()]]
        data = data.loc[~incomplete.to_numpy()]
        if warn:
            missing_in = [c for c in sorted(used_columns) if samples[c].isna().any()]
            warnings.warn(
                f"{len(dropped)} sample(s) dropped because {', '.join(missing_in)} is missing for "
                f"them: {_list(dropped)}.",
                ManylmWarning,
                stacklevel=2,
            )
    if len(data) == 0:
        raise DesignError("No samples are left after dropping those with missing covariates.")
    try:
        matrix = model_matrix(formula if "~" in formula else "~ " + formula, data,
                              context=evaluation_context(), na_action="raise")
    except FormulaError:
        raise
    except Exception as error:
        raise FormulaError(f"Cannot build the design from {formula!r}: {error}") from None
    spec = matrix.model_spec
    names = [str(name) for name in spec.column_names]
    terms: dict[str, list[str]] = {}
    for term, columns in spec.term_slices.items():
        terms["Intercept" if str(term) == "1" else str(term)] = names[columns]
    values = np.asarray(matrix, dtype=np.float64)
    design = Design(
        matrix=values, coefficient_names=names, sample_ids=[str(s) for s in data.index],
        terms=terms, dropped_samples=dropped, formula=formula,
        estimable=estimable_columns(values),
    )
    if warn:
        _warn_non_estimable(design)
    return design


def _with_reference(data: pd.DataFrame, column: str, level: object) -> pd.Series:
    """The column as a categorical whose first level is ``level``."""
    if column not in data.columns:
        raise DesignError(
            f"Reference level given for {column!r}, which is not a column of the sample sheet. "
            f"Available columns: {', '.join(map(repr, data.columns))}."
        )
    values = data[column]
    observed = pd.unique(values.dropna())
    try:
        ordered = sorted(observed)
    except TypeError:
        ordered = sorted(observed, key=str)
    matches = [v for v in ordered if v == level or str(v) == str(level)]
    if not matches:
        raise DesignError(
            f"Reference level {level!r} is not a value of column {column!r}; its values are "
            f"{', '.join(map(repr, map(str, ordered)))}."
        )
    categories = [matches[0]] + [v for v in ordered if v is not matches[0] and v != matches[0]]
    return pd.Series(
        pd.Categorical(values, categories=categories), index=values.index, name=column
    )


def _warn_non_estimable(design: Design) -> None:
    if design.non_estimable:
        warnings.warn(
            "Coefficients not estimable (linearly dependent on earlier columns of the design): "
            f"{', '.join(design.non_estimable)}. They are reported as NaN; the others are fitted.",
            ManylmWarning,
            stacklevel=3,
        )


def _list(items: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
