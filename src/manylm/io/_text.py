"""Opening delimited text files (plain or gzip) and peeking at their first records."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import Any

from manylm.errors import InputError

__all__ = ["open_text", "peek_records", "single_field_header_error", "unreadable_text_error"]


def open_text(path: Path, gz: bool) -> io.TextIOWrapper:
    """Open a UTF-8 text file (byte-order mark skipped) for the :mod:`csv` module.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    gz : bool
        Whether it is gzip-compressed.

    Returns
    -------
    io.TextIOWrapper
        A text stream with universal newlines left to :mod:`csv` (``newline=""``).
    """
    raw: Any = gzip.open(path, "rb") if gz else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def peek_records(
    path: Path, delimiter: str, gz: bool, label: str
) -> tuple[list[str] | None, list[str] | None]:
    """Return the first two non-blank records of a delimited file (``None`` where absent).

    Parameters
    ----------
    path : pathlib.Path
        The file.
    delimiter : str
        The field separator.
    gz : bool
        Whether the file is gzip-compressed.
    label : str
        How to name the file in error messages.

    Returns
    -------
    header, first : list of str or None
        The header record and the first data record.

    Raises
    ------
    InputError
        If the file is not valid gzip (when ``gz``), not UTF-8, or cannot be parsed.
    """
    try:
        with open_text(path, gz) as fh:
            records = (r for r in csv.reader(fh, delimiter=delimiter) if r)
            header = next(records, None)
            first = next(records, None)
    except (gzip.BadGzipFile, EOFError) as exc:
        raise InputError(
            f"{label}: cannot read the file as gzip-compressed text ({exc}); "
            f"check that it is not truncated or misnamed"
        ) from exc
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{label}: the text is not UTF-8 ({exc.reason} at byte {exc.start}); "
            f"save the file as UTF-8"
        ) from exc
    except csv.Error as exc:
        raise InputError(f"{label}: cannot parse the first lines: {exc}") from exc
    except OSError as exc:
        raise InputError(f"{label}: cannot read the file: {exc}") from exc
    return header, first


def single_field_header_error(label: str, header_field: str, delimiter: str,
                              matrix: str) -> InputError:
    """The error for a matrix whose header has one field (no sample columns), with a hint when
    the field holds another separator: tabs in a .csv, commas in a .tsv, semicolons (a
    spreadsheet's CSV where the comma is the decimal mark)."""
    hint = ""
    if delimiter != "\t" and "\t" in header_field:
        hint = " The header contains tabs: the file seems tab-separated; name it .tsv."
    elif delimiter != "," and "," in header_field:
        hint = " The header contains commas: the file seems comma-separated; name it .csv."
    elif ";" in header_field:
        hint = (" The header contains semicolons: the file seems semicolon-separated, which "
                "manylm does not read; save it with tabs (.tsv) or commas (.csv) between the "
                "fields, and points as the decimal mark.")
    return InputError(
        f"{label}: no sample columns: the header has a single field. The {matrix} needs "
        f"feature IDs in the first column and one column per sample.{hint}"
    )


def unreadable_text_error(label: str, error: BaseException, gz: bool,
                          where: str = "") -> InputError:
    """The error for a text matrix whose bytes cannot be read (``where``: after which data
    row): a gzip stream cut short, or a file that is not what its name says."""
    return InputError(
        f"{label}: cannot read the file{where} ({error}); it may be truncated or not "
        f"{'gzip-compressed ' if gz else ''}text: write it again"
    )
