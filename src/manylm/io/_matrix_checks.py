"""Checks shared by the matrix readers: IDs, finite values, assembling the DataFrame."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from manylm.errors import DataError, InputError
from manylm.io._ids import (
    blank_feature_ids_error,
    duplicated_ids,
    empty_id_positions,
    quote_ids,
)
from manylm.io.formats import not_a_file_error

#: Cell contents read as a missing value (NaN), besides numbers.
MISSING_VALUES: tuple[str, ...] = ("", "NA", "NaN", "nan")


def _target_dtype(dtype: Any) -> np.dtype[Any] | None:
    if dtype is None:
        return None
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise InputError(f"dtype must be float64, float32 or None, not {dtype!r}") from exc
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise InputError(f"dtype must be float64, float32 or None, not {dt}")
    return dt


def _check_is_file(p: Path, label: str, kind: str) -> None:
    if not p.exists():
        raise InputError(
            f"{label}: {kind} file not found (looked in {p.absolute().parent}); check the path"
        )
    if not p.is_file():
        article = "an" if kind[:1].lower() in "aeiou" else "a"
        raise not_a_file_error(p, label, f"{article} {kind} file",
                               " (a Zarr store is a directory whose name ends in .zarr)")


def _assemble(
    features: pa.Array,
    samples: Sequence[str],
    values: np.ndarray,
    label: str,
    kind: str,
) -> pd.DataFrame:
    """Check IDs and values (samples x features) and build the features x samples frame."""
    _check_sample_ids(samples, label, kind)
    if len(features) == 0:
        raise InputError(
            f"{label}: the {kind} matrix has sample columns but no feature rows; "
            f"give a file with one row per feature"
        )
    blank = pc.or_kleene(pc.is_null(features), pc.equal(pc.utf8_trim_whitespace(features), ""))
    if pc.any(blank).as_py():
        rows = pc.indices_nonzero(pc.fill_null(blank, True)).to_pylist()
        raise blank_feature_ids_error(label, len(rows), rows)
    feature_ids = features.to_numpy(zero_copy_only=False)
    index = pd.Index(feature_ids, name="feature")
    dups = duplicated_ids(index)
    if dups:
        raise DataError(
            f"{label}: {len(dups)} feature ID(s) occur more than once: {quote_ids(dups, 5)}; "
            f"feature IDs must be unique: remove or rename the repeated rows "
            f"(or summarise them per feature beforehand)"
        )
    columns = pd.Index([str(s) for s in samples])
    if kind == "weights":  # the words of manylm.fit.block.refuse_bad_weights, which also
        # refuses a missing weight where the fit uses one (cells it does not use may be NA)
        advice = "weights must be finite and non-negative (0 leaves the observation out)"
        for bad, what in ((np.isinf(values), "infinite"), (values < 0, "negative")):
            _reject_cells(bad, values, index, columns, label, "weight", what, f"{what} weight",
                          advice)
    else:
        _reject_cells(np.isinf(values), values, index, columns, label, "value", "infinite",
                      "infinite value", f"{kind} values must be finite numbers: write NA for "
                      "a missing value")
    return pd.DataFrame(values.T, index=index, columns=columns, copy=False)


def _check_sample_ids(samples: Sequence[str], label: str, kind: str) -> None:
    if len(samples) == 0:
        raise InputError(
            f"{label}: no sample columns: the {kind} matrix needs feature IDs in the first column "
            f"and one column per sample"
        )
    blank = empty_id_positions(samples)
    if blank:
        cols = ", ".join(str(i + 2) for i in blank[:5])
        raise DataError(
            f"{label}: {len(blank)} sample column(s) have a blank sample ID in the header "
            f"(column {cols}); name every sample column (a trailing delimiter at the end of "
            f"the lines also makes an empty column)"
        )
    dups = duplicated_ids(samples)
    if dups:
        raise DataError(
            f"{label}: {len(dups)} sample ID(s) occur more than once in the header: "
            f"{quote_ids(dups)}; sample IDs must be unique: rename or remove the repeated columns"
        )


def _first_flagged(bad: np.ndarray) -> tuple[int, int]:
    """Return (sample, feature) position of the first flagged cell in file (row-major) order."""
    feature = int(np.argmax(bad.any(axis=0)))
    sample = int(np.argmax(bad[:, feature]))
    return sample, feature


def _reject_cells(
    bad: np.ndarray, values: np.ndarray, features: pd.Index, samples: pd.Index, label: str,
    noun: str, problem: str, what: str, fix: str,
) -> None:
    """Raise naming the first flagged cell (in file order) and how many more there are."""
    if not bad.any():
        return
    count = int(bad.sum())
    j, i = _first_flagged(bad)
    more = f" ({count - 1} more {what}(s) in the file)" if count > 1 else ""
    raise DataError(
        f"{label}: feature {features[i]!r}, sample {samples[j]!r}: {noun} {values[j, i]} is "
        f"{problem}{more}; {fix}"
    )
