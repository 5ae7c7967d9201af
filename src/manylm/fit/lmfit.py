"""``lm_fit``: the same linear model fitted to every feature (limma's ``lmFit``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.design.matrix import Design, design_matrix
from manylm.errors import DataError, DesignError
from manylm.fit.block import BlockFitter
from manylm.fit.blocked import BlockedFitter, block_indicators
from manylm.fit.result import LinearModelFit

__all__ = ["lm_fit"]


def lm_fit(
    data: Any,
    design: Design | str | pd.DataFrame | NDArray[np.float64],
    *,
    samples: pd.DataFrame | None = None,
    reference: Mapping[str, object] | None = None,
    weights: Any = None,
    block: Any = None,
    correlation: float | None = None,
    keep_residuals: bool = False,
    dtype: type = np.float64,
    block_rows: int | None = None,
    n_jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> LinearModelFit:
    """Fit one linear model to every feature (row) of ``data``.

    Reproduces limma's ``lmFit`` (``lm.series``): least squares for each feature; with missing
    values each feature is fitted on its own observed samples (no imputation) and a coefficient
    it cannot estimate is NaN; with weights, weighted least squares. All features are fitted at
    once (one QR of the design when nothing is missing, batched normal equations otherwise).

    Parameters
    ----------
    data : DataFrame, array or AnnData
        Features x samples (DataFrame or array; NaN is missing). An AnnData object is samples x
        features and is transposed.
    design : Design, formula string, DataFrame or array
        A :class:`~manylm.design.Design`, or a formula (then ``samples`` is required), or a
        samples x coefficients matrix.
    samples : DataFrame, optional
        The sample sheet, indexed by sample ID, for a formula design. With an AnnData input,
        ``obs`` is used when this is omitted.
    reference : mapping, optional
        Reference level per factor for a formula design, e.g. ``{"cancer": "Normal"}``.
    weights : array or DataFrame, optional
        Observation weights: one per sample (shape (n_samples,)) or one per value (the shape of
        ``data``). Zero leaves the observation out.
    block : sequence, optional
        One label per sample of the design (a patient, a litter...): samples of the same block
        are correlated, and the model is fitted by generalised least squares (limma's
        ``lmFit(block=, correlation=)``).
    correlation : float, optional
        The intra-block correlation; estimated with :func:`manylm.duplicate_correlation` when a
        block is given without it.
    keep_residuals : bool
        Keep residuals and fitted values (features x samples) on the result.
    dtype : numpy float type
        Arithmetic precision; float32 input is computed in float64 unless float32 is asked for.
    block_rows, n_jobs : int, optional
        Rows per block and worker threads (default: about 2 MB blocks, every core).
    progress : callable, optional
        Called with the number of features done after each block.

    Returns
    -------
    LinearModelFit
    """
    matrix, feature_ids, sample_ids, obs = _as_matrix(data)
    if isinstance(design, str):
        sheet = samples if samples is not None else obs
        if sheet is None:
            raise DesignError("A formula design needs the sample sheet: pass samples=DataFrame.")
        sheet = sheet.copy()
        sheet.index = sheet.index.astype(str)
        design = design_matrix(design, sheet, reference=reference)
    elif not isinstance(design, Design):
        design = Design.from_matrix(
            design, sample_ids=None if isinstance(design, pd.DataFrame) else sample_ids
        )
    matrix, sample_ids, columns = _align(matrix, sample_ids, design)
    if design.n_samples < design.rank + 0 or design.n_samples < 1:
        raise DesignError("The design has no samples.")
    if design.n_samples < design.n_coefficients:
        raise DesignError(
            f"The design has {design.n_coefficients} coefficients but only {design.n_samples} "
            "samples: at least as many samples as coefficients are needed (and more, to "
            "estimate variances). Simplify the formula."
        )
    sample_weights, weight_matrix = _weights(weights, matrix.shape, columns, feature_ids,
                                             sample_ids)
    fitter: BlockFitter | BlockedFitter
    block_correlation: float | None = None
    if block is not None:
        labels = _block_labels(block, design, columns)
        if correlation is None:
            from manylm.fit.duplicate_correlation import duplicate_correlation_arrays

            estimate = duplicate_correlation_arrays(
                np.asarray(matrix, dtype=np.float64), design.matrix, labels,
                weights=weight_matrix if weight_matrix is not None else sample_weights)
            correlation = estimate.consensus
        if not -1 < correlation < 1:
            raise DesignError(f"The intra-block correlation must be in (-1, 1); got {correlation}.")
        block_correlation = float(correlation)
        fitter = BlockedFitter(design.matrix, design.estimable, block_indicators(labels),
                               block_correlation, sample_weights, dtype)
    else:
        fitter = BlockFitter(design.matrix, design.estimable, sample_weights, dtype)
    # The in-memory engine builds on this package's fitters: imported here, not at the top.
    from manylm.engine.inmemory import fit_in_blocks

    chunk = fit_in_blocks(
        fitter, matrix, weight_matrix, block_rows=block_rows, n_jobs=n_jobs,
        keep_residuals=keep_residuals, feature_ids=feature_ids, sample_ids=sample_ids,
        progress=progress,
    )
    if isinstance(fitter, BlockedFitter):
        cov = np.full((design.n_coefficients,) * 2, np.nan)
        cov[np.ix_(design.estimable, design.estimable)] = fitter.covariance()
    else:
        cov = _design_covariance(design, sample_weights)
    index = pd.Index(feature_ids, name="feature")
    residuals = fitted = None
    if keep_residuals and chunk.residuals is not None and chunk.fitted is not None:
        residuals = pd.DataFrame(chunk.residuals, index=index, columns=sample_ids)
        fitted = pd.DataFrame(chunk.fitted, index=index, columns=sample_ids)
    return LinearModelFit(
        coefficients=chunk.coefficients,
        stdev_unscaled=chunk.stdev_unscaled,
        residual_variance=chunk.residual_variance,
        df_residual=chunk.df_residual,
        mean=chunk.mean,
        cov_unscaled=cov,
        feature_ids=index,
        coefficient_names=list(design.coefficient_names),
        design=design,
        residuals=residuals,
        fitted=fitted,
        terms=dict(design.terms),
        block_correlation=block_correlation,
    )


def _as_matrix(data: Any) -> tuple[NDArray[Any], list[str] | pd.Index, list[str] | None,
                                   pd.DataFrame | None]:
    """Features x samples values, feature IDs, sample IDs (None if unknown) and AnnData obs."""
    obs = None
    if _is_anndata(data):
        obs = data.obs
        values = data.X
        if hasattr(values, "toarray"):
            values = values.toarray()
        matrix = np.asarray(values).T
        features, samples = pd.Index(data.var_names.astype(str)), list(map(str, data.obs_names))
    elif isinstance(data, pd.DataFrame):
        _check_unique([str(c) for c in data.columns], "sample")
        non_numeric = [c for c, kind in data.dtypes.items()
                       if not pd.api.types.is_numeric_dtype(kind)]
        if non_numeric:
            raise DataError(
                f"The data matrix has non-numeric columns: {', '.join(map(str, non_numeric[:5]))}"
                ". Put feature IDs in the index (df.set_index(...)) and keep only numbers."
            )
        matrix = data.to_numpy()
        features, samples = data.index.astype(str), [str(c) for c in data.columns]
    else:
        try:
            matrix = np.asarray(data)
        except Exception:
            raise DataError("The data must be a numeric matrix (features x samples).") from None
        if matrix.dtype.kind not in "fiub":
            raise DataError(f"The data must be numeric; got values of type {matrix.dtype}.")
        # Features of a bare array are known by position (0, 1, ...).
        features, samples = pd.RangeIndex(matrix.shape[0] if matrix.ndim == 2 else 1), None
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2:
        raise DataError(f"The data must be 2-D (features x samples); got {matrix.ndim} dimensions.")
    if matrix.dtype.kind in "iub":
        matrix = matrix.astype(np.float64)
    if matrix.shape[0] == 0:
        raise DataError("The data matrix has no features (rows).")
    _check_unique(features, "feature")
    if samples is not None:
        _check_unique(samples, "sample")
    return matrix, features, samples, obs


def _is_anndata(data: Any) -> bool:
    return type(data).__name__ == "AnnData" and hasattr(data, "obs") and hasattr(data, "var")


def _check_unique(ids: Any, what: str) -> None:
    index = pd.Index(ids)
    if not index.is_unique:
        duplicated = list(dict.fromkeys(index[index.duplicated()]))
        raise DataError(
            f"Duplicate {what} IDs: {', '.join(map(repr, duplicated[:5]))}"
            + (f" and {len(duplicated) - 5} more" if len(duplicated) > 5 else "")
            + f". Every {what} needs a unique ID."
        )


def _align(matrix: NDArray[Any], sample_ids: list[str] | None,
           design: Design) -> tuple[NDArray[Any], list[str], NDArray[np.int_] | None]:
    """Select and order the data columns to match the design's samples."""
    if sample_ids is None:
        if matrix.shape[1] != design.n_samples:
            raise DesignError(
                f"The data has {matrix.shape[1]} samples (columns) but the design has "
                f"{design.n_samples} rows; they must match, in the same order."
            )
        return matrix, list(design.sample_ids), None
    if list(sample_ids) == list(design.sample_ids):
        return matrix, list(sample_ids), None
    position = {s: i for i, s in enumerate(sample_ids)}
    missing = [s for s in design.sample_ids if s not in position]
    if missing:
        if set(design.sample_ids).isdisjoint(position) and matrix.shape[1] == design.n_samples:
            # Design with generic sample names: match by position.
            return matrix, list(sample_ids), None
        raise DesignError(
            f"{len(missing)} sample(s) of the design are not columns of the data: "
            f"{', '.join(missing[:10])}. Check that sample IDs match between the data and the "
            "sample sheet."
        )
    columns = np.array([position[s] for s in design.sample_ids])
    return matrix[:, columns], list(design.sample_ids), columns


def _weights(weights: Any, shape: tuple[int, int], columns: NDArray[np.int_] | None,
             feature_ids: Any, sample_ids: list[str]
             ) -> tuple[NDArray[np.float64] | None, NDArray[Any] | None]:
    """Per-sample weights or a features x samples matrix, aligned with the data.

    A DataFrame (or Series) is matched to the data by feature and sample ID; an array by
    position (in the data's original column order).
    """
    if weights is None:
        return None, None
    if isinstance(weights, (pd.DataFrame, pd.Series)):
        values = _labelled_weights(weights, feature_ids, sample_ids)
        columns = None  # already in the design's sample order
    else:
        values = weights
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("Weights must be numeric.") from None
    if values.ndim == 1:
        if columns is not None and values.shape[0] != len(columns):
            values = values[columns] if values.shape[0] > int(columns.max()) else values
        if values.shape[0] != shape[1]:
            raise DataError(
                f"{values.shape[0]} sample weights given for {shape[1]} samples."
            )
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            raise DataError(
                f"Sample weight #{int(np.argmax(bad)) + 1} is {values[bad][0]}: weights must be "
                "finite and non-negative."
            )
        if np.all(values > 0):
            return values, None
        return None, np.broadcast_to(values, shape)
    if values.ndim == 2:
        if columns is not None and values.shape[1] != shape[1]:
            values = values[:, columns]
        if values.shape != shape:
            raise DataError(
                f"The weights matrix has shape {values.shape}; the data has {shape} (features x "
                "samples). They must match."
            )
        return None, values
    raise DataError("Weights must be a vector (one per sample) or a features x samples matrix.")


def _labelled_weights(weights: pd.DataFrame | pd.Series, feature_ids: Any,
                      sample_ids: list[str]) -> NDArray[Any]:
    """Weights picked by ID, with an error naming any feature or sample they lack."""
    samples = pd.Index([str(s) for s in sample_ids])
    if isinstance(weights, pd.Series):
        series = weights.set_axis(weights.index.astype(str))
        lacking = samples.difference(series.index)
        if len(lacking):
            raise DataError(f"No weight for sample(s) {', '.join(lacking[:10])}.")
        return series.loc[samples].to_numpy()
    frame = weights.set_axis(weights.index.astype(str), axis=0).set_axis(
        weights.columns.astype(str), axis=1)
    features = pd.Index([str(f) for f in feature_ids])
    lacking_samples = samples.difference(frame.columns)
    lacking_features = features.difference(frame.index)
    if len(lacking_samples) or len(lacking_features):
        what = [f"sample(s) {', '.join(lacking_samples[:10])}" if len(lacking_samples) else "",
                f"feature(s) {', '.join(lacking_features[:10])}" if len(lacking_features) else ""]
        raise DataError(
            f"The weights have no column or row for {' and '.join(w for w in what if w)}: "
            "they are matched to the data by feature and sample ID."
        )
    if frame.index.equals(features) and frame.columns.equals(samples):
        return frame.to_numpy()
    return frame.loc[features, samples].to_numpy()


def _block_labels(block: Any, design: Design, columns: NDArray[np.int_] | None
                  ) -> NDArray[np.object_]:
    """One block label per design sample (a column name of the sample sheet is not enough)."""
    labels = np.asarray(block.reindex(design.sample_ids) if isinstance(block, pd.Series)
                        else block, dtype=object)
    if labels.shape[0] != design.n_samples:
        if columns is not None and labels.shape[0] > int(columns.max()):
            labels = labels[columns]
        else:
            raise DesignError(
                f"{labels.shape[0]} block labels given for {design.n_samples} samples."
            )
    if pd.isna(labels).any():
        raise DesignError("The block labels have missing values; give every sample a block.")
    return labels


def _design_covariance(design: Design, sample_weights: NDArray[np.float64] | None
                       ) -> NDArray[np.float64]:
    """(X'WX)^-1 over the estimable columns; NaN for the others (limma's cov.coefficients)."""
    x = design.matrix[:, design.estimable]
    if sample_weights is not None:
        x = x * np.sqrt(sample_weights)[:, None]
    _, r = np.linalg.qr(x)
    r_inverse = np.linalg.inv(r)
    p = design.n_coefficients
    cov = np.full((p, p), np.nan)
    cov[np.ix_(design.estimable, design.estimable)] = r_inverse @ r_inverse.T
    return cov
