"""Inputs shared by the batch-correction verbs: the data matrix, batch labels and covariates.

The verbs (:func:`~manylm.confounders.combat.combat`, :func:`~manylm.confounders.combat_seq.
combat_seq`, :func:`~manylm.confounders.batch_effect.remove_batch_effect`) accept a features x
samples DataFrame or array, batch labels given directly or as a column of a sample sheet, and
covariates as a formula over the sample sheet, a Design, a DataFrame or an array. Everything is
checked here and turned into plain arrays, in the data's sample order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.design.matrix import Design, design_matrix
from manylm.errors import DataError, DesignError, InputError
from manylm.io._ids import quote_ids

__all__ = ["BatchLayout", "FeatureMatrix", "aligned_rows", "batch_layout", "covariate_matrix",
           "feature_matrix", "like_input", "sample_sheet"]


@dataclass(frozen=True)
class FeatureMatrix:
    """A features x samples matrix as float64 values, with the IDs it came with.

    ``values`` may share memory with the caller's data: it is never written to.
    """

    values: NDArray[np.float64]
    feature_ids: list[str]
    sample_ids: list[str] | None  # None for a bare array (samples known by position)

    def sample_label(self, column: int) -> str:
        return _sample_label(self.sample_ids, column)


@dataclass(frozen=True)
class BatchLayout:
    """Which batch each sample belongs to.

    Attributes
    ----------
    codes : array of int, shape (n_samples,)
        Index into ``levels`` for each sample.
    levels : list of str
        Batch names, sorted as R's ``factor`` sorts them (numerically when every label is a
        number).
    """

    codes: NDArray[np.intp]
    levels: list[str]

    @property
    def n_batches(self) -> int:
        return len(self.levels)

    @property
    def sizes(self) -> NDArray[np.intp]:
        return np.bincount(self.codes, minlength=self.n_batches)

    def columns(self, batch: int) -> NDArray[np.intp]:
        return np.flatnonzero(self.codes == batch)

    def level_index(self, level: object, *, what: str) -> int:
        """Position of ``level`` (matched as text, so ``2`` finds batch ``"2"``)."""
        wanted = str(level)
        if wanted not in self.levels:
            raise InputError(
                f"{what} {wanted!r} is not one of the batches: {quote_ids(self.levels, 20)}."
            )
        return self.levels.index(wanted)


def feature_matrix(data: Any, *, what: str = "data") -> FeatureMatrix:
    """Check a features x samples matrix and return it as float64 values with its IDs."""
    if isinstance(data, pd.DataFrame):
        non_numeric = [c for c, kind in data.dtypes.items()
                       if not pd.api.types.is_numeric_dtype(kind)]
        if non_numeric:
            raise DataError(
                f"The {what} has non-numeric columns: {quote_ids(non_numeric, 5)}. Put feature "
                "IDs in the index (df.set_index(...)) and keep only numbers."
            )
        values = data.to_numpy(dtype=np.float64)
        features = [str(i) for i in data.index]
        samples: list[str] | None = [str(c) for c in data.columns]
    else:
        try:
            values = np.asarray(data, dtype=np.float64)  # read only: no copy needed
        except (TypeError, ValueError):
            raise DataError(f"The {what} must be a numeric matrix (features x samples).") from None
        features = [f"row {i + 1}" for i in range(values.shape[0])] if values.ndim == 2 else []
        samples = None
    if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] == 0:
        raise DataError(
            f"The {what} must be a non-empty 2-D matrix (features x samples); got shape "
            f"{values.shape}."
        )
    for ids, kind in ((features, "feature"), (samples or [], "sample")):
        index = pd.Index(ids)
        if not index.is_unique:
            repeated = list(dict.fromkeys(index[index.duplicated()]))
            raise DataError(f"Repeated {kind} IDs in the {what}: {quote_ids(repeated)}; every "
                            f"{kind} needs its own ID.")
    infinite = np.isinf(values)
    if infinite.any():
        row, column = (int(i[0]) for i in np.nonzero(infinite))
        raise DataError(
            f"The {what} has {int(infinite.sum())} infinite value(s), e.g. feature "
            f"{features[row]!r}, sample {_sample_label(samples, column)!r}; replace them (NaN "
            "marks a missing value)."
        )
    return FeatureMatrix(values, features, samples)


def sample_sheet(samples: pd.DataFrame | None, matrix: FeatureMatrix) -> pd.DataFrame | None:
    """The sample sheet's rows for the matrix columns, in the matrix's order."""
    if samples is None:
        return None
    if not isinstance(samples, pd.DataFrame):
        raise DesignError("samples must be a pandas DataFrame indexed by sample ID.")
    if matrix.sample_ids is None:
        if len(samples) != matrix.values.shape[1]:
            raise DesignError(
                f"The sample sheet has {len(samples)} rows but the data has "
                f"{matrix.values.shape[1]} columns; give one row per column, in order."
            )
        return samples
    index = pd.Index([str(s) for s in samples.index])
    missing = [s for s in matrix.sample_ids if s not in set(index)]
    if missing:
        raise DesignError(
            f"{len(missing)} sample(s) of the data have no row in the sample sheet: "
            f"{quote_ids(missing)}; add them to the sheet or drop those columns."
        )
    if not index.is_unique:
        raise DesignError("The sample sheet repeats sample IDs; give each sample one row.")
    aligned = samples.iloc[index.get_indexer(pd.Index(matrix.sample_ids))].copy()
    aligned.index = pd.Index(matrix.sample_ids, name=samples.index.name)
    return aligned


def batch_layout(batch: Any, matrix: FeatureMatrix, samples: pd.DataFrame | None, *,
                 name: str = "batch") -> BatchLayout:
    """Resolve batch labels: a sample-sheet column name, a Series (matched by sample ID) or a
    sequence with one label per data column."""
    labels = _labels(batch, matrix, samples, name=name)
    missing = labels.isna().to_numpy()
    if missing.any():
        ids = [matrix.sample_label(int(i)) for i in np.flatnonzero(missing)]
        raise DesignError(
            f"The {name} label is missing for {len(ids)} sample(s): {quote_ids(ids)}; give "
            f"every sample a {name} or remove those samples."
        )
    observed = pd.unique(labels)
    numbers = pd.to_numeric(pd.Series(observed), errors="coerce")
    if numbers.notna().all():  # R's factor() sorts numbers numerically
        order = np.argsort(numbers.to_numpy(), kind="stable")
    else:
        order = np.argsort(np.array([str(v) for v in observed]), kind="stable")
    levels_raw = [observed[i] for i in order]
    levels = [_level_name(v) for v in levels_raw]
    lookup = {value: position for position, value in enumerate(levels_raw)}
    codes = np.array([lookup[v] for v in labels], dtype=np.intp)
    return BatchLayout(codes=codes, levels=levels)


def covariate_matrix(covariates: Any, matrix: FeatureMatrix, samples: pd.DataFrame | None, *,
                     what: str = "covariates") -> tuple[NDArray[np.float64], list[str]]:
    """Covariates as an (n_samples, n_covariates) matrix without constant-one columns.

    Accepts a formula (evaluated safely over ``samples``), a :class:`~manylm.design.Design`,
    a numeric DataFrame (matched by sample ID when its index holds them) or an array.
    """
    n_samples = matrix.values.shape[1]
    if covariates is None:
        return np.zeros((n_samples, 0)), []
    if isinstance(covariates, str):
        if samples is None:
            raise DesignError(f"A formula for the {what} ({covariates!r}) needs the sample "
                              "sheet: pass samples=.")
        design = design_matrix(covariates, samples, warn=False)
        if design.dropped_samples:
            columns = sorted({c for c in samples.columns if samples[c].isna().any()})
            raise DesignError(
                f"The {what} ({covariates!r}) are missing for {len(design.dropped_samples)} "
                f"sample(s): {quote_ids(design.dropped_samples)} (columns with gaps: "
                f"{', '.join(map(str, columns))}); batch correction needs them for every "
                "sample: fill them in or remove those samples."
            )
        values, names = design.matrix, list(design.coefficient_names)
    elif isinstance(covariates, Design):
        values, names = aligned_rows(covariates.as_frame(), matrix, what)
    elif isinstance(covariates, (pd.DataFrame, pd.Series)):
        values, names = aligned_rows(pd.DataFrame(covariates), matrix, what)
    else:
        try:
            values = np.array(covariates, dtype=np.float64)
        except (TypeError, ValueError):
            raise DesignError(f"The {what} must be numeric.") from None
        if values.ndim == 1:
            values = values[:, None]
        names = [f"covariate{j + 1}" for j in range(values.shape[1])]
    if values.ndim != 2 or values.shape[0] != n_samples:
        raise DesignError(f"The {what} must have one row per sample ({n_samples}); got shape "
                          f"{values.shape}.")
    if not np.isfinite(values).all():
        rows = np.unique(np.nonzero(~np.isfinite(values))[0])
        raise DesignError(
            f"The {what} have missing or infinite values for sample(s) "
            f"{quote_ids([matrix.sample_label(i) for i in rows])}; fill them in or remove those "
            "samples."
        )
    keep = ~np.all(values == 1, axis=0)  # the intercept: batch indicators already span it
    return values[:, keep], [n for n, k in zip(names, keep, strict=True) if k]


def like_input(data: Any, values: NDArray[np.float64]) -> Any:
    """``values`` in the form ``data`` came in: a DataFrame with its labels, or an array."""
    if isinstance(data, pd.DataFrame):
        return pd.DataFrame(values, index=data.index, columns=data.columns)
    return values


def _labels(batch: Any, matrix: FeatureMatrix, samples: pd.DataFrame | None, *,
            name: str) -> pd.Series:
    n_samples = matrix.values.shape[1]
    if isinstance(batch, str):
        if samples is None:
            raise DesignError(f"{name}={batch!r} names a sample-sheet column: pass samples= as "
                              "well, or give one label per sample.")
        if batch not in samples.columns:
            raise DesignError(
                f"The {name} column {batch!r} is not in the sample sheet; its columns are "
                f"{quote_ids([str(c) for c in samples.columns], 20)}."
            )
        return pd.Series(samples[batch].to_numpy(), dtype=object)
    if isinstance(batch, pd.Series) and matrix.sample_ids is not None:
        index = [str(i) for i in batch.index]
        if set(matrix.sample_ids) <= set(index):
            lookup = pd.Series(batch.to_numpy(), index=index)
            return pd.Series(lookup.loc[matrix.sample_ids].to_numpy(), dtype=object)
    values = np.asarray(batch, dtype=object)
    if values.ndim != 1 or len(values) != n_samples:
        raise DesignError(f"The {name} must give one label per sample ({n_samples}); got "
                          f"{values.size}.")
    return pd.Series(values, dtype=object)


def aligned_rows(frame: pd.DataFrame, matrix: FeatureMatrix,
                 what: str) -> tuple[NDArray[np.float64], list[str]]:
    """A numeric samples x columns frame as an array in the data's sample order (matched by
    sample ID when the frame's index holds the data's sample IDs, by position otherwise)."""
    index = [str(i) for i in frame.index]
    if matrix.sample_ids is not None and set(matrix.sample_ids) <= set(index):
        frame = frame.set_axis(index, axis=0).loc[matrix.sample_ids]
    non_numeric = [c for c, kind in frame.dtypes.items()
                   if not pd.api.types.is_numeric_dtype(kind)]
    if non_numeric:
        raise DesignError(
            f"The {what} have non-numeric columns {quote_ids(non_numeric)}; give a formula "
            "(e.g. '~ cancer') to encode factors, or numeric columns."
        )
    return frame.to_numpy(dtype=np.float64), [str(c) for c in frame.columns]


def _level_name(value: object) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _sample_label(samples: Sequence[str] | None, column: int) -> str:
    return samples[column] if samples is not None else f"column {column + 1}"
