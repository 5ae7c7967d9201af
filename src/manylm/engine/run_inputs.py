"""Checking the arguments of a streamed or distributed fit, before any data is read.

Both :func:`manylm.engine.fit_streaming` and :func:`manylm.engine.fit_dask` take the data as a
block source (or something wrapped into one), the design as :func:`manylm.lm_fit` takes it, and
the moderation and table options of :func:`manylm.ebayes`, :func:`manylm.treat` and
:func:`manylm.top_table`. Everything that can be wrong with them is found here, on a one-feature
template fit, so a bad option fails at once rather than after the first pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.design.matrix import Design, design_matrix
from manylm.engine.array_source import ArraySource
from manylm.engine.chunk_model import ChunkModel
from manylm.errors import DataError, DesignError, InputError
from manylm.inference.adjust import p_adjust
from manylm.inference.tables import SORT_KEYS
from manylm.io.feature_blocks import FeatureBlockSource

__all__ = ["PreparedRun", "as_source", "prepare_run"]


@dataclass(frozen=True)
class PreparedRun:
    """A checked request: where the data come from and what every chunk does.

    Attributes
    ----------
    source : FeatureBlockSource
    weights_source : FeatureBlockSource or None
        A weights matrix read alongside the data, row for row.
    samples : list of str or None
        The source's columns to read, in design order (None: all, by position).
    model : ChunkModel
    columns : list of str
        The table's columns after ``feature``, ``adj_p_value`` included.
    adjust, sort_by : str
    positional_ids : bool
        The features have no IDs (a bare array): the table is indexed by row number.
    weights_samples : list of str or None
        The weights matrix's columns to read, in design order (None: all, by position): its
        own, matched by name like the data's, whatever their order in either file.
    """

    source: FeatureBlockSource
    weights_source: FeatureBlockSource | None
    samples: list[str] | None
    model: ChunkModel
    columns: list[str]
    adjust: str
    sort_by: str
    positional_ids: bool
    weights_samples: list[str] | None = None

    @property
    def n_features(self) -> int:
        return int(self.source.n_features)

    @property
    def value_columns(self) -> list[str]:
        """The columns computed per chunk (all but ``adj_p_value``)."""
        return [c for c in self.columns if c != "adj_p_value"]


def as_source(data: Any, label: str = "the data matrix") -> FeatureBlockSource:
    """A block source as is; a NumPy array or DataFrame (features x samples) wrapped in one."""
    if isinstance(data, FeatureBlockSource):
        return data
    if isinstance(data, (np.ndarray, pd.DataFrame)):
        return ArraySource(data, path=label)
    raise InputError(
        f"Expected a feature block source, a NumPy array or a DataFrame (features x samples); "
        f"got {type(data).__name__}. Open a file with manylm.io.block_sources."
        "open_feature_blocks(path)."
    )


def prepare_run(data: Any, design: Design | str | pd.DataFrame | NDArray[np.float64], *,
                samples: pd.DataFrame | None = None, reference: Mapping[str, object] | None = None,
                coef: Any = None, contrasts: Sequence[str] | pd.DataFrame | None = None,
                weights: Any = None,
                moderate: bool = True, trend: bool = False, robust: bool = False,
                treat_lfc: float | None = None, proportion: float = 0.01,
                stdev_coef_lim: tuple[float, float] = (0.1, 4.0),
                winsor_tail_p: tuple[float, float] = (0.05, 0.1), confint: float = 0.95,
                adjust: str = "BH", sort_by: str = "p", transform: str | None = None
                ) -> PreparedRun:
    """Check a request and build its :class:`PreparedRun` (see :func:`fit_streaming`)."""
    source = as_source(data)
    if source.n_features < 1:
        raise DataError(f"{source.path}: the matrix has no features (rows).")
    if sort_by not in SORT_KEYS:
        raise InputError(f"The 'sort_by' parameter must be one of {', '.join(SORT_KEYS)}. Got "
                         f"{sort_by!r}.")
    p_adjust(np.array([0.5]), adjust)  # raises on an unknown method
    if not 0 < proportion < 1:
        raise InputError(f"The 'proportion' parameter must be in (0, 1). Got {proportion}.")
    if treat_lfc is not None and not np.isfinite(treat_lfc):
        raise InputError(f"The 'treat_lfc' parameter must be a finite number. Got {treat_lfc}.")
    if treat_lfc is not None and not moderate:
        raise InputError("treat is moderated: drop moderate=False or treat_lfc.")
    if not moderate and (trend or robust):
        raise InputError("trend and robust moderate the variances: drop moderate=False.")
    design = _design(design, samples, reference, source)
    columns = _columns(source, design)
    sample_weights, weights_source = _weights(weights, source, design, columns)
    weights_columns = None if weights_source is None else _columns(weights_source, design)
    model = ChunkModel(
        design=design, coef=None if coef is None else (list(coef) if isinstance(
            coef, (list, tuple)) else [coef]),
        sample_weights=sample_weights, contrasts=_contrasts(contrasts),
        moderate=moderate, trend=trend, robust=robust, treat_lfc=treat_lfc,
        proportion=proportion, stdev_coef_lim=stdev_coef_lim, winsor_tail_p=winsor_tail_p,
        confint=confint, transform=transform, label=source.path)
    table = model.table_columns()  # validates the tests, contrasts and options
    if sort_by == "B" and "lods" not in table:
        raise InputError("Cannot sort by B: there are no B-statistics (lods) here.")
    position = table.index("lods") if "lods" in table else len(table)
    table.insert(position, "adj_p_value")
    return PreparedRun(source=source, weights_source=weights_source, samples=columns,
                       model=model, columns=table, adjust=adjust, sort_by=sort_by,
                       positional_ids=bool(getattr(source, "positional_ids", False)),
                       weights_samples=weights_columns)


def _contrasts(contrasts: Sequence[str] | pd.DataFrame | None) -> list[str] | pd.DataFrame | None:
    if contrasts is None or isinstance(contrasts, pd.DataFrame):
        return contrasts
    return list(contrasts) or None


def _design(design: Any, samples: pd.DataFrame | None, reference: Mapping[str, object] | None,
            source: FeatureBlockSource) -> Design:
    if isinstance(design, Design):
        return design
    if isinstance(design, str):
        if samples is None:
            raise DesignError("A formula design needs the sample sheet: pass samples=DataFrame.")
        sheet = samples.copy()
        sheet.index = sheet.index.astype(str)
        return design_matrix(design, sheet, reference=reference)
    generic = not isinstance(design, pd.DataFrame)
    return Design.from_matrix(design, sample_ids=list(source.sample_ids) if generic else None)


def _columns(source: FeatureBlockSource, design: Design) -> list[str] | None:
    """The source's columns for the design's samples, in design order (None: all as they are)."""
    available = list(source.sample_ids)
    wanted = list(design.sample_ids)
    if wanted == available:
        return None
    present = set(available)
    missing = [s for s in wanted if s not in present]
    if not missing:
        return wanted
    if present.isdisjoint(wanted) and len(available) == len(wanted):
        return None  # a design with generic sample names: matched by position
    raise DesignError(
        f"{len(missing)} sample(s) of the design are not columns of {source.path}: "
        f"{', '.join(missing[:10])}. Check that sample IDs match between the data and the "
        "sample sheet."
    )


def _weights(weights: Any, source: FeatureBlockSource, design: Design,
             columns: list[str] | None
             ) -> tuple[NDArray[np.float64] | None, FeatureBlockSource | None]:
    """Per-sample weights in design order, or a weights matrix read block by block (its
    columns matched to the design by :func:`_columns`, as the data's)."""
    if weights is None:
        return None, None
    if isinstance(weights, FeatureBlockSource) or (
            isinstance(weights, (np.ndarray, pd.DataFrame)) and np.ndim(weights) == 2):
        matrix = as_source(weights, "the weights matrix")
        if matrix.n_features != source.n_features:
            raise DataError(
                f"{matrix.path} has {matrix.n_features} features but {source.path} has "
                f"{source.n_features}: the weights matrix needs one row per feature, in the "
                "same order."
            )
        return None, matrix
    if isinstance(weights, pd.Series):
        series = weights.set_axis(weights.index.astype(str))
        lacking = [s for s in design.sample_ids if s not in series.index]
        if lacking:
            raise DataError(f"No weight for sample(s) {', '.join(lacking[:10])}.")
        values = series.loc[list(design.sample_ids)].to_numpy(dtype=np.float64)
    else:
        try:
            values = np.asarray(weights, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError("Weights must be numeric.") from None
        if values.ndim != 1:
            raise DataError("Weights must be a vector (one per sample) or a features x samples "
                            "matrix (a block source, array or DataFrame).")
        if columns is not None and values.shape[0] == len(source.sample_ids):
            position = {s: i for i, s in enumerate(source.sample_ids)}
            values = values[[position[s] for s in columns]]  # given in the data's column order
    if values.shape[0] != design.n_samples:
        raise DataError(f"{values.shape[0]} sample weights given for {design.n_samples} samples.")
    return values, None
