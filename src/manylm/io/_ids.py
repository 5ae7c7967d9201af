"""Checking and quoting lists of feature or sample IDs for error messages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from manylm.errors import DataError

__all__ = ["blank_feature_ids_error", "duplicated_ids", "empty_id_positions", "quote_ids"]


def quote_ids(ids: Sequence[object], limit: int = 10) -> str:
    """Quote up to ``limit`` IDs for a message, saying how many there are in all.

    Parameters
    ----------
    ids : sequence
        The IDs, in the order to show them.
    limit : int, default 10
        How many to show.

    Returns
    -------
    str
        For example ``"'a', 'b', 'c'"`` or ``"'a', 'b' and 3 more (5 in all)"``.
    """
    shown = ", ".join(repr(str(i)) for i in list(ids)[:limit])
    if len(ids) > limit:
        return f"{shown} and {len(ids) - limit} more ({len(ids)} in all)"
    return shown


def duplicated_ids(ids: Iterable[object]) -> list[str]:
    """Return each ID that occurs more than once, once, in order of first occurrence.

    Parameters
    ----------
    ids : iterable
        The IDs to check.

    Returns
    -------
    list of str
        The repeated IDs; empty when all are unique.
    """
    index = ids if isinstance(ids, pd.Index) else pd.Index(list(ids), dtype=object)
    if index.is_unique:
        return []
    dup = index[index.duplicated(keep="first")]
    return [str(i) for i in pd.unique(dup.to_numpy())]


def empty_id_positions(ids: Sequence[str]) -> list[int]:
    """Return the 0-based positions of IDs that are empty or only whitespace.

    Parameters
    ----------
    ids : sequence of str
        The IDs to check.

    Returns
    -------
    list of int
        Positions of the blank IDs.
    """
    return [i for i, x in enumerate(ids) if not str(x).strip()]


def blank_feature_ids_error(label: str, n_blank: int, first_rows: Sequence[int]) -> DataError:
    """The error for feature rows without an ID (empty, only whitespace or missing): how many,
    and the first of their 0-based rows (up to five shown, as 1-based data rows)."""
    shown = [str(row + 1) for row in first_rows[:5]]
    more = " ..." if n_blank > len(shown) else ""
    return DataError(
        f"{label}: {n_blank} feature row(s) have a blank feature ID (data rows "
        f"{', '.join(shown)}{more}); give every row an ID in the first column or remove it"
    )
