"""Reading sample sheets and matching them to the columns of a matrix by sample ID."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from manylm.errors import DesignError, InputError
from manylm.io._ids import duplicated_ids, empty_id_positions, quote_ids
from manylm.io._text import peek_records
from manylm.io.formats import SAMPLE_SHEET_SUFFIXES, detect_format, not_a_file_error
from manylm.io.matrix import MISSING_VALUES

__all__ = ["align_samples", "read_sample_sheet"]


def read_sample_sheet(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a sample sheet: one row per sample, one column per sample variable.

    Parameters
    ----------
    path : str or path-like
        A ``.tsv``, ``.txt``, ``.tab`` (tab-separated) or ``.csv`` (comma-separated) file,
        optionally gzip-compressed (``.gz``). The first column holds the sample IDs, the header
        row the variable names.

    Returns
    -------
    pandas.DataFrame
        Index = sample IDs as strings (``01005`` stays ``01005``), named ``"sample"``, in file
        order. A column whose non-missing values all parse as numbers is numeric (int64 if they
        are all whole numbers and none is missing, float64 otherwise); any other column holds
        strings (object dtype; str under pandas 3). Empty cells, ``NA``, ``NaN`` and ``nan``
        are missing values.

    Raises
    ------
    InputError
        If the file does not exist or has an unsupported suffix, is empty, has no column
        besides the sample IDs, repeats a column name, or cannot be parsed.
    DesignError
        If a sample ID is blank or repeated (the message names them).
    """
    label = os.fspath(path)
    p = Path(path)
    if not p.exists():
        raise InputError(
            f"{label}: sample sheet not found (looked in {p.absolute().parent}); check the path"
        )
    if not p.is_file():
        raise not_a_file_error(p, label, "a sample sheet")
    fmt = detect_format(p, SAMPLE_SHEET_SUFFIXES, what="sample sheet")
    assert fmt.delimiter is not None
    head, first = peek_records(p, fmt.delimiter, fmt.gzip, label)
    if head is None:
        raise InputError(
            f"{label}: the sample sheet is empty; it needs a header row and one row per sample"
        )
    n_fields = max(len(head), len(first or ()))
    try:
        raw = pd.read_csv(
            p,
            sep=fmt.delimiter,
            header=None,
            names=list(range(n_fields)),
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            compression="gzip" if fmt.gzip else None,
            encoding="utf-8-sig",
            skip_blank_lines=True,
            engine="c",
        )
    except pd.errors.EmptyDataError as exc:
        raise InputError(
            f"{label}: the sample sheet is empty; it needs a header row and one row per sample"
        ) from exc
    except pd.errors.ParserError as exc:
        raise InputError(f"{label}: cannot parse the sample sheet: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{label}: the text is not UTF-8; save the file as UTF-8") from exc
    except (OSError, EOFError) as exc:
        raise InputError(f"{label}: cannot read the sample sheet: {exc}") from exc

    header = ["" if pd.isna(h) else str(h) for h in raw.iloc[0]]
    body = raw.iloc[1:]
    if len(body) == 0:
        raise InputError(
            f"{label}: the sample sheet has a header but no sample rows; add one row per sample"
        )
    if first is not None and len(first) == len(head) + 1:
        # header one field short (R write.table style): it names the variables only
        header = ["sample", *head]
    body = body.fillna("")
    keep = [
        k for k in range(1, len(header)) if header[k].strip() or (body.iloc[:, k] != "").any()
    ]  # drop unnamed, entirely empty columns (trailing delimiters)
    unnamed = [k + 1 for k in keep if not header[k].strip()]
    if unnamed:
        raise InputError(
            f"{label}: column(s) {', '.join(map(str, unnamed))} of the sample sheet have no "
            f"name in the header row; name them or remove them"
        )
    if not keep:
        other = "," if fmt.delimiter == "\t" else "\t"
        hint = ""
        if other in header[0]:
            hint = " (the header contains " + ("commas" if other == "," else "tabs")
            hint += ": check that the suffix matches the delimiter)"
        raise InputError(
            f"{label}: the sample sheet has no columns besides the sample IDs{hint}; "
            f"add at least one column of sample variables"
        )
    names = [header[k] for k in keep]
    dup_names = duplicated_ids(names)
    if dup_names:
        raise InputError(
            f"{label}: column name(s) repeated in the sample sheet header: "
            f"{quote_ids(dup_names)}; give every column a distinct name"
        )

    ids = body.iloc[:, 0].tolist()
    blank = empty_id_positions(ids)
    if blank:
        lines = ", ".join(str(i + 2) for i in blank[:10])
        raise DesignError(
            f"{label}: {len(blank)} row(s) of the sample sheet have a blank sample ID "
            f"(data row(s) at line {lines}, counting the header as line 1 and skipping blank "
            f"lines); give every row a sample ID in the first column or remove it"
        )
    dups = duplicated_ids(ids)
    if dups:
        raise DesignError(
            f"{label}: sample ID(s) repeated in the sample sheet: {quote_ids(dups)}; "
            f"each sample must have exactly one row"
        )

    columns = {name: _convert_column(body.iloc[:, k]) for name, k in zip(names, keep, strict=True)}
    index = pd.Index(ids, name="sample")
    return pd.DataFrame({n: c.to_numpy() for n, c in columns.items()}, index=index)


def _convert_column(values: pd.Series) -> pd.Series:
    """Missing tokens -> NaN; numeric if every other value parses as a number."""
    missing = values.isin(MISSING_VALUES)
    present = values[~missing]
    try:
        numbers = pd.to_numeric(present.str.strip(), errors="raise")
    except (ValueError, TypeError):
        return values.where(~missing, np.nan)
    if len(present) == 0:
        return pd.Series(np.nan, index=values.index, dtype=np.float64)
    out = pd.Series(np.nan, index=values.index, dtype=np.float64)
    out[~missing] = numbers.to_numpy(dtype=np.float64)
    if not missing.any() and pd.api.types.is_integer_dtype(numbers.dtype):
        return out.astype(np.int64)
    return out


def align_samples(
    matrix_columns: Iterable[object],
    sheet: pd.DataFrame,
    *,
    matrix_label: str = "the matrix",
    sheet_label: str = "the sample sheet",
) -> tuple[pd.DataFrame, list[str]]:
    """Order the sample sheet like the matrix columns, matching by sample ID.

    Parameters
    ----------
    matrix_columns : iterable
        Sample IDs of the matrix columns, in order (for example ``matrix.columns``).
    sheet : pandas.DataFrame
        The sample sheet, indexed by sample ID (as from :func:`read_sample_sheet`).
    matrix_label, sheet_label : str
        How to name the matrix and the sheet in messages (for example their file names).

    Returns
    -------
    sheet_aligned : pandas.DataFrame
        The rows of ``sheet`` for the matrix columns, in the matrix's column order.
    notices : list of str
        Messages for the user, e.g. naming the sheet rows dropped because the matrix has no
        such column.

    Raises
    ------
    DesignError
        If a matrix column has no row in the sheet (up to 10 are named, with the count), or the
        matrix columns repeat a sample ID.
    """
    columns = [str(c) for c in matrix_columns]
    dup_cols = duplicated_ids(columns)
    if dup_cols:
        raise DesignError(
            f"{matrix_label}: sample ID(s) repeated among the columns: {quote_ids(dup_cols)}"
        )
    dup_rows = duplicated_ids(sheet.index)
    if dup_rows:
        raise DesignError(
            f"{sheet_label}: sample ID(s) repeated in the sample sheet: {quote_ids(dup_rows)}"
        )
    sheet_ids = [str(i) for i in sheet.index]
    known = set(sheet_ids)
    missing = [c for c in columns if c not in known]
    if missing:
        hint = ""
        if len(missing) == len(columns):
            hint = (
                " None of the sample IDs match: check that the first column of the sample "
                "sheet holds the same IDs as the matrix header (spelling, case, suffixes)."
            )
        raise DesignError(
            f"{len(missing)} sample(s) of {matrix_label} have no row in {sheet_label}: "
            f"{quote_ids(missing)}; add rows for them to the sample sheet or remove these "
            f"columns from the matrix.{hint}"
        )
    wanted = set(columns)
    extra = [s for s in sheet_ids if s not in wanted]
    notices: list[str] = []
    if extra:
        notices.append(
            f"{len(extra)} sample(s) in {sheet_label} have no column in {matrix_label} and "
            f"were left out: {quote_ids(extra)}"
        )
    positions = pd.Index(sheet_ids).get_indexer(pd.Index(columns))
    aligned = sheet.iloc[positions]
    return aligned, notices
