"""Command-line options shared by the verbs that build a design."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from manylm.errors import InputError

__all__ = ["MATRIX_FORMATS", "add_design_options", "notices_to_stderr", "parse_references"]

#: The matrix formats manylm.io.read_matrix reads, for --help.
MATRIX_FORMATS = "TSV/CSV (gz), Parquet, .h5ad, Zarr (.zarr directory) or HDF5 (.h5, .hdf5)"


def add_design_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", required=True, metavar="SAMPLES",
                        help="sample sheet (TSV/CSV), first column the sample IDs")
    parser.add_argument("--design", required=True, metavar="FORMULA",
                        help="right-hand-side formula, e.g. '~ cancer + C(batch)'")
    parser.add_argument("--reference", action="append", default=[], metavar="COLUMN=LEVEL",
                        help="reference level of a factor (repeatable)")


def add_checksum_option(parser: argparse.ArgumentParser) -> None:
    """``--checksum``: a SHA-256 of every input in the run record, whatever its size."""
    parser.add_argument("--checksum", action="store_true",
                        help="record a SHA-256 of every input file in the run record (default: "
                        "only of files up to 1 GiB; larger ones are identified by size and "
                        "modification time, as hashing costs ~0.7 s per GB)")


def parse_references(items: list[str]) -> dict[str, str]:
    references: dict[str, str] = {}
    for item in items:
        column, sep, level = item.partition("=")
        if not sep or not column.strip() or not level.strip():
            raise InputError(f"--reference {item!r}: write it as COLUMN=LEVEL, e.g. cancer=Normal.")
        references[column.strip()] = level.strip()
    return references


@contextmanager
def notices_to_stderr(quiet: bool) -> Iterator[list[str]]:
    """Print manylm's warnings as one-line notes on stderr (and collect them)."""
    collected: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield collected
        finally:
            for item in caught:
                message = str(item.message)
                if message in collected:
                    continue
                collected.append(message)
                if not quiet:
                    sys.stderr.write(f"manylm: note: {message}\n")
