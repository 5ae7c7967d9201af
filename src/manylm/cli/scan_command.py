"""``manylm scan``: every variant against every phenotype (QTL), or against one outcome (GWAS).

Reads the genotypes a block at a time, the phenotypes (or one sample-sheet column) and the
covariates (a file, or a formula on the sample sheet), calls :func:`manylm.qtl.scan`, and
writes the passing pairs and a run record (``OUT.run.json``, with the number of tests).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from manylm.cli.file_roles import declare_files
from manylm.cli.options import (
    MATRIX_FORMATS,
    add_checksum_option,
    notices_to_stderr,
    parse_references,
)
from manylm.cli.progress import FeatureProgress
from manylm.design import Design, design_matrix
from manylm.errors import InputError, ManylmWarning
from manylm.io import (
    align_samples,
    check_table_path,
    file_fingerprint,
    package_versions,
    read_matrix,
    read_sample_sheet,
    write_run_record,
)
from manylm.io.genotypes import open_genotypes
from manylm.qtl import MODELS, scan
from manylm.qtl.positions import normalize_positions

__all__ = ["add_parser", "run"]


def add_parser(verbs: Any) -> None:
    parser = verbs.add_parser(
        "scan", help="test every variant against every phenotype (QTL) or one outcome (GWAS)",
        description="Fit phenotype ~ covariates + genotype for every (variant, phenotype) pair "
        "(Matrix eQTL / tensorQTL algebra) and write the pairs with p <= --p-threshold, with "
        "BH-adjusted p-values over every test performed.",
    )
    parser.add_argument("genotypes", metavar="GENOTYPES",
                        help="dosages (variants x samples: .parquet, .zarr, .h5, TSV/CSV), a "
                        "PLINK .bed (or prefix), or a VCF/BCF")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--phenotypes", metavar="MATRIX",
                      help=f"phenotypes x samples matrix: {MATRIX_FORMATS}")
    what.add_argument("--outcome", metavar="COLUMN",
                      help="one phenotype: a numeric column of --samples (e.g. 0/1 status)")
    parser.add_argument("--samples", metavar="SAMPLES", default=None,
                        help="sample sheet (for --outcome and formula covariates)")
    parser.add_argument("--covariates", metavar="FILE|FORMULA", default=None,
                        help="covariates x samples file (Matrix eQTL/tensorQTL layout; samples x "
                        "covariates also accepted), or a formula on --samples, e.g. '~ sex + "
                        "C(batch)'")
    parser.add_argument("--reference", action="append", default=[], metavar="COLUMN=LEVEL",
                        help="reference level of a factor in the formula (repeatable)")
    parser.add_argument("--p-threshold", type=float, default=1e-5, metavar="P",
                        help="write pairs with p <= P (trans pairs in a cis scan; 0: none; "
                        "default 1e-5)")
    parser.add_argument("--cis-window", type=int, default=None, metavar="BP",
                        help="also a cis scan: pairs within BP of the phenotype start")
    parser.add_argument("--cis-p-threshold", type=float, default=1.0, metavar="P",
                        help="write cis pairs with p <= P (default 1: all)")
    parser.add_argument("--positions", action="append", default=[], metavar="FILE",
                        help="positions table(s): ID, chromosome, position/start, for the "
                        "phenotypes and (dosage matrices) the variants (repeatable)")
    parser.add_argument("--model", choices=MODELS, default="linear",
                        help="linear (default), anova (genotype classes, F test) or "
                        "interaction (g x --interaction)")
    parser.add_argument("--interaction", metavar="COVARIATE", default=None,
                        help="covariate interacting with the genotype (--model interaction)")
    parser.add_argument("--maf", type=float, default=0.0, metavar="F",
                        help="skip variants with minor allele frequency below F")
    parser.add_argument("--missing", choices=("complete", "mean"), default="complete",
                        help="missing calls: exact complete-case tests (default) or mean "
                        "imputation (Matrix eQTL)")
    parser.add_argument("--max-missing-exact", type=int, default=32, metavar="M",
                        help="mean-impute variants with more than M missing calls (default 32)")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                        help="precision of the screening products (float32: faster, same "
                        "results)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="threads (default: every core)")
    parser.add_argument("--vcf-field", default="DS", metavar="FIELD",
                        help="VCF format field with dosages (default DS; GT when absent)")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="output table (.parquet, .tsv, .csv, optionally .gz)")
    add_checksum_option(parser)
    parser.add_argument("--quiet", action="store_true", help="no notes, no progress bar")
    parser.set_defaults(run=run)
    declare_files(parser, inputs=("genotypes", "phenotypes", "samples", "covariates", "positions"),
                  outputs=("out",))


def run(args: argparse.Namespace) -> int:
    clock = time.perf_counter()
    check_table_path(args.out)
    if args.outcome is not None and args.samples is None:
        raise InputError("--outcome names a column of the sample sheet: give --samples.")
    formula = args.covariates is not None and args.covariates.lstrip().startswith("~")
    if formula and args.samples is None:
        raise InputError(f"--covariates {args.covariates!r} is a formula on the sample sheet: "
                         "give --samples.")
    if args.cis_window is not None and not args.positions:
        raise InputError("--cis-window needs --positions (phenotype starts, and variant "
                         "positions for dosage matrices).")
    if args.interaction is not None and args.model != "interaction":
        raise InputError("--interaction goes with --model interaction.")
    with notices_to_stderr(args.quiet) as notices:
        reader = open_genotypes(args.genotypes, vcf_field=args.vcf_field)
        sheet = read_sample_sheet(args.samples) if args.samples else None
        phenotypes = _phenotypes(args, sheet)
        covariates: Design | pd.DataFrame | None = None
        if formula:
            assert sheet is not None
            aligned, notes = align_samples(phenotypes.columns, sheet,
                                           matrix_label=args.phenotypes or "the outcome",
                                           sheet_label=args.samples)
            for note in notes:
                notices.append(note)
            covariates = design_matrix(args.covariates, aligned,
                                       reference=parse_references(args.reference))
            phenotypes = phenotypes[list(covariates.sample_ids)]
        elif args.covariates is not None:
            covariates = _covariate_file(args.covariates, [str(c) for c in phenotypes.columns])
        positions = _positions(args.positions) if args.positions else None
        read_seconds = time.perf_counter() - clock
        with FeatureProgress(reader.n_variants or 0, "scanning",
                             enabled=not args.quiet and reader.n_variants is not None) as bar:
            result = scan(
                reader, phenotypes.iloc[0] if args.outcome is not None else phenotypes,
                covariates, p_threshold=args.p_threshold, cis_window=args.cis_window,
                cis_p_threshold=args.cis_p_threshold,
                variant_positions=None if reader.has_positions else positions,
                phenotype_positions=positions, model=args.model, interaction=args.interaction,
                maf=args.maf, missing=args.missing, max_missing_exact=args.max_missing_exact,
                dtype=args.dtype, n_threads=args.threads, out=args.out, progress=bar)
    record = {
        "command": "scan",
        "argv": sys.argv[1:],
        "inputs": _inputs(args),
        **result.summary(),
        "covariates_given": args.covariates,
        "outcome": args.outcome,
        "samples_used": result.samples,
        "output": str(Path(args.out).resolve()),
        "notices": notices,
        "versions": package_versions(),
        "timings_seconds": {"read": round(read_seconds, 4),
                            "total": round(time.perf_counter() - clock, 4)},
        "cpu_count": os.cpu_count(),
    }
    write_run_record(f"{args.out}.run.json", record)
    if not args.quiet:
        tests = ", ".join(f"{v:,} {k}" for k, v in result.n_tests.items() if v)
        written = sum(result.n_written.values())
        sys.stderr.write(f"manylm: {tests or 'no'} tests; {written:,} pairs written to "
                         f"{args.out}\n")
    return 0


def _phenotypes(args: argparse.Namespace, sheet: pd.DataFrame | None) -> pd.DataFrame:
    if args.phenotypes is not None:
        return read_matrix(args.phenotypes, kind="phenotype")
    assert sheet is not None
    if args.outcome not in sheet.columns:
        raise InputError(f"--outcome {args.outcome!r} is not a column of {args.samples}. "
                         f"Columns: {', '.join(map(str, sheet.columns))}.")
    column = sheet[args.outcome]
    values = pd.to_numeric(column, errors="coerce")
    if (values.isna() & column.notna()).any():
        example = column[values.isna() & column.notna()].iloc[0]
        raise InputError(f"--outcome {args.outcome!r} must be numeric (0/1 for case/control); "
                         f"it holds values such as {example!r} in {args.samples}")
    known = values.dropna()
    if len(known) < len(values):
        dropped = [str(s) for s in values.index[values.isna()]]
        warnings.warn(f"{len(dropped)} sample(s) without {args.outcome} were left out: "
                      f"{', '.join(dropped[:10])}", ManylmWarning, stacklevel=2)
    return pd.DataFrame([known.to_numpy(dtype=np.float64)], index=[args.outcome],
                        columns=known.index.astype(str))


def _covariate_file(path: str, samples: list[str]) -> pd.DataFrame:
    matrix = read_matrix(path, kind="covariate")
    wanted = set(samples)
    by_columns = len(wanted.intersection(matrix.columns.astype(str)))
    by_rows = len(wanted.intersection(matrix.index.astype(str)))
    if by_rows > by_columns:
        return matrix  # samples x covariates
    return matrix.T


def _positions(paths: list[str]) -> pd.DataFrame:
    """All positions files as one table (each may use its own column names)."""
    tables = [normalize_positions(read_sample_sheet(path), f"--positions {path}")
              for path in paths]
    return normalize_positions(pd.concat(tables, axis=0), "--positions (all files)")


def _inputs(args: argparse.Namespace) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for name in ("genotypes", "phenotypes", "samples"):
        path = getattr(args, name)
        if path is None:
            continue
        inputs[name] = _fingerprint(path, args.checksum)
    if args.covariates and not args.covariates.lstrip().startswith("~"):
        inputs["covariates"] = _fingerprint(args.covariates, args.checksum)
    for i, path in enumerate(args.positions):
        inputs[f"positions_{i + 1}"] = _fingerprint(path, args.checksum)
    return inputs


def _fingerprint(path: str, always: bool) -> dict[str, Any]:
    """The file's fingerprint (a SHA-256 by size, or ``always``), or a PLINK set's three."""
    checksum = True if always else None
    p = Path(path)
    bed = p if p.suffix.lower() == ".bed" else Path(path + ".bed")
    if bed.is_file():
        return {name: file_fingerprint(bed.with_suffix(suffix), checksum=checksum)
                for name, suffix in (("bed", ".bed"), ("bim", ".bim"), ("fam", ".fam"))}
    if p.is_file():
        return file_fingerprint(p, checksum=checksum)
    return {"path": str(p.absolute())}
