"""``manylm design``: show the coefficients a formula gives, before fitting anything."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import pandas as pd

from manylm.cli.options import notices_to_stderr, parse_references
from manylm.design import design_matrix
from manylm.io import read_sample_sheet

__all__ = ["add_parser"]


def add_parser(verbs: Any) -> None:
    parser = verbs.add_parser(
        "design", help="print the coefficient names and terms of a design",
        description="Print the coefficients, terms and dropped samples of a design formula, so "
        "--test and --contrast can be written without guessing.",
    )
    parser.add_argument("samples_positional", metavar="SAMPLES", nargs="?",
                        help="sample sheet (or give --samples)")
    parser.add_argument("--samples", dest="samples", metavar="SAMPLES", default=None)
    parser.add_argument("--design", required=True, metavar="FORMULA")
    parser.add_argument("--reference", action="append", default=[], metavar="COLUMN=LEVEL")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from manylm.errors import InputError

    path = args.samples_positional or args.samples
    if path is None:
        raise InputError("manylm design needs the sample sheet: manylm design SAMPLES --design F")
    sheet = read_sample_sheet(path)
    with notices_to_stderr(args.quiet):
        design = design_matrix(args.design, sheet, reference=parse_references(args.reference),
                               warn=True)
    out = sys.stdout
    out.write(f"design: {args.design}\n")
    out.write(f"samples used: {design.n_samples}")
    out.write(f"; dropped: {len(design.dropped_samples)}")
    out.write(f" ({', '.join(design.dropped_samples)})\n" if design.dropped_samples else "\n")
    out.write(f"coefficients ({design.n_coefficients}, rank {design.rank}):\n")
    term_of = {c: t for t, cs in design.terms.items() for c in cs}
    for name, estimable in zip(design.coefficient_names, design.estimable, strict=True):
        flag = "" if estimable else "   (not estimable)"
        out.write(f"  {name:<40} term {term_of.get(name, '?')}{flag}\n")
    testable = [t for t in design.terms if t != "Intercept"]
    out.write(f"terms (for --test): {', '.join(testable)}\n")
    out.write("sample sheet columns:\n")
    for column in sheet.columns:
        values = sheet[column]
        distinct = values.dropna().unique()
        kind = "numeric" if pd.api.types.is_numeric_dtype(values) else "categorical"
        hint = ""
        if kind == "numeric" and len(distinct) <= 10:
            hint = f"  (only {len(distinct)} values: write C({column}) to treat it as a factor)"
        out.write(f"  {column}: {kind}, {len(distinct)} distinct{hint}\n")
    return 0
