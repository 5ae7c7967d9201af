"""File formats recognised by their suffix.

Every reader and writer in :mod:`manylm.io` decides the format of a file from its name alone, so
that a wrong name is reported before any data are read or any computation is spent. This module
holds that one decision.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from manylm.errors import InputError

__all__ = [
    "MATRIX_SUFFIXES",
    "SAMPLE_SHEET_SUFFIXES",
    "TABLE_SUFFIXES",
    "TEXT_MATRIX_SUFFIXES",
    "FileFormat",
    "detect_format",
    "not_a_file_error",
]


@dataclass(frozen=True)
class FileFormat:
    """The format of a file as told by its suffix.

    Attributes
    ----------
    name : str
        ``"tsv"``, ``"csv"``, ``"parquet"``, ``"h5ad"``, ``"zarr"`` (a directory) or
        ``"hdf5"``.
    delimiter : str or None
        Field separator of a text format, ``None`` for binary formats.
    gzip : bool
        Whether the text file is gzip-compressed (suffix ``.gz``).
    """

    name: str
    delimiter: str | None = None
    gzip: bool = False


_TEXT = {
    ".tsv": FileFormat("tsv", "\t"),
    ".txt": FileFormat("tsv", "\t"),
    ".tab": FileFormat("tsv", "\t"),
    ".csv": FileFormat("csv", ","),
}
_BINARY = {
    ".parquet": FileFormat("parquet"),
    ".h5ad": FileFormat("h5ad"),
    ".zarr": FileFormat("zarr"),
    ".h5": FileFormat("hdf5"),
    ".hdf5": FileFormat("hdf5"),
}


def _with_gz(suffixes: tuple[str, ...]) -> tuple[str, ...]:
    return suffixes + tuple(s + ".gz" for s in suffixes)


#: Suffixes of text matrices (tab- or comma-separated, optionally gzip-compressed).
TEXT_MATRIX_SUFFIXES: tuple[str, ...] = _with_gz(tuple(_TEXT))
#: Suffixes accepted for expression and weight matrices (``.zarr`` is a directory; ``.zarr``,
#: ``.h5`` and ``.hdf5`` have the layout of :mod:`manylm.io.zarr_blocks`).
MATRIX_SUFFIXES: tuple[str, ...] = (*TEXT_MATRIX_SUFFIXES, ".parquet", ".h5ad", ".zarr", ".h5",
                                    ".hdf5")
#: Suffixes accepted for sample sheets.
SAMPLE_SHEET_SUFFIXES: tuple[str, ...] = _with_gz(tuple(_TEXT))
#: Suffixes accepted for result tables written by :func:`manylm.io.write_table`.
TABLE_SUFFIXES: tuple[str, ...] = (*_with_gz(tuple(_TEXT)), ".parquet")


def detect_format(
    path: str | os.PathLike[str], supported: tuple[str, ...], *, what: str
) -> FileFormat:
    """Tell the format of ``path`` from its suffix.

    Parameters
    ----------
    path : str or path-like
        The file name; the file need not exist.
    supported : tuple of str
        The suffixes allowed here, such as :data:`MATRIX_SUFFIXES`.
    what : str
        What the file is, for the error message ("expression matrix", "sample sheet"...).

    Returns
    -------
    FileFormat
        The format, delimiter and compression.

    Raises
    ------
    InputError
        If the suffix is not one of ``supported``; the message lists the supported ones.
    """
    suffixes = [s.lower() for s in Path(path).suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    base = suffixes[-2] if gz and len(suffixes) >= 2 else (suffixes[-1] if suffixes else "")
    key = base + (".gz" if gz else "")
    fmt = _TEXT.get(base) if base in _TEXT else _BINARY.get(base)
    if fmt is None or key not in supported:
        shown = "".join(suffixes[-2:]) if gz else (suffixes[-1] if suffixes else "")
        got = f"suffix {shown!r}" if shown else "no suffix"
        raise InputError(
            f"{os.fspath(path)}: cannot tell the format of the {what} from its name ({got}); "
            f"supported suffixes: {', '.join(supported)}. Rename the file or convert it."
        )
    if gz:
        return FileFormat(fmt.name, fmt.delimiter, gzip=True)
    return fmt


def not_a_file_error(path: Path, label: str, what: str, hint: str = "") -> InputError:
    """The error for an input path that exists but is not a regular file: a directory, or a
    pipe, device or socket (``<(zcat m.tsv.gz)``, ``/dev/null``), which manylm cannot read
    (it reads a file more than once, or maps it)."""
    if path.is_dir():
        return InputError(f"{label}: is a directory, not {what}; give the file's path{hint}")
    return InputError(f"{label}: is not a regular file (a pipe, a device or a socket), not "
                      f"{what}; save it to a file and give that file's path")
