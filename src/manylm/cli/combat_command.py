"""``manylm combat``: remove batch effects with ComBat (or ComBat-seq for counts) and write the
corrected matrix in the input's layout."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from manylm.cli.file_roles import declare_files
from manylm.cli.options import MATRIX_FORMATS, add_checksum_option, notices_to_stderr
from manylm.errors import InputError
from manylm.io import (
    align_samples,
    check_table_path,
    file_fingerprint,
    package_versions,
    read_matrix,
    read_sample_sheet,
    write_run_record,
    write_table,
)

__all__ = ["add_parser", "run"]


def add_parser(verbs: Any) -> None:
    parser = verbs.add_parser(
        "combat", help="remove batch effects (ComBat; ComBat-seq with --counts)",
        description="Remove batch effects from every feature with ComBat's empirical Bayes "
        "adjustment (Johnson et al. 2007, as R sva's ComBat), or, with --counts, from RNA-seq "
        "counts with ComBat-seq (Zhang et al. 2020, as sva's ComBat_seq). The output has the "
        "layout of the input: the same features in the same order and the same sample columns. "
        "For plots and clustering; to test effects, put the batch in the model instead "
        "(manylm fit --design '~ group + batch').",
    )
    parser.add_argument("expression", metavar="EXPRESSION",
                        help=f"features x samples matrix: {MATRIX_FORMATS}")
    parser.add_argument("--samples", required=True, metavar="SAMPLES",
                        help="sample sheet (TSV/CSV), first column the sample IDs")
    parser.add_argument("--batch", required=True, metavar="COLUMN",
                        help="sample-sheet column holding the batch of each sample")
    parser.add_argument("--protect", metavar="FORMULA", default=None,
                        help="covariates whose effects are kept, e.g. '~ cancer' (sva's mod)")
    parser.add_argument("--non-parametric", action="store_true",
                        help="non-parametric priors (slower: quadratic in the features)")
    parser.add_argument("--mean-only", action="store_true",
                        help="adjust batch means only (needed for a batch of one sample)")
    parser.add_argument("--reference-batch", metavar="BATCH", default=None,
                        help="leave this batch unchanged and adjust the others towards it")
    parser.add_argument("--counts", action="store_true",
                        help="EXPRESSION holds raw read counts: run ComBat-seq (negative "
                        "binomial; output stays whole counts)")
    parser.add_argument("--group", metavar="COLUMN", default=None,
                        help="with --counts: the biological condition to protect (sva's group)")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="output matrix (.tsv, .csv, optionally .gz, or .parquet); a run "
                        "record is written beside it as FILE.run.json")
    add_checksum_option(parser)
    parser.add_argument("--quiet", action="store_true", help="no notes on stderr")
    parser.set_defaults(run=run)
    declare_files(parser, inputs=("expression", "samples"),
                  outputs=("out",))


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    timings: dict[str, float] = {}
    _check_options(args)
    check_table_path(args.out)  # a misspelt output name fails before any work
    expression = read_matrix(args.expression)
    sheet = read_sample_sheet(args.samples)
    with notices_to_stderr(args.quiet) as notices:
        aligned, alignment_notes = align_samples(expression.columns, sheet,
                                                 matrix_label=args.expression,
                                                 sheet_label=args.samples)
        for note in alignment_notes:
            notices.append(note)
            if not args.quiet:
                sys.stderr.write(f"manylm: note: {note}\n")
        for option, column in (("--batch", args.batch), ("--group", args.group)):
            if column is not None and column not in aligned.columns:
                raise InputError(
                    f"{args.samples}: {option} column {column!r} is not in the sample sheet; "
                    f"its columns are {', '.join(map(repr, map(str, aligned.columns)))}."
                )
        timings["read"] = time.perf_counter() - started
        clock = time.perf_counter()
        if args.counts:
            table, details = _combat_seq(expression, aligned, args)
        else:
            table, details = _combat(expression, aligned, args)
        timings["adjust"] = time.perf_counter() - clock
    clock = time.perf_counter()
    write_table(table.reset_index(), args.out)
    timings["write"] = time.perf_counter() - clock
    record = _run_record(args, expression, aligned, details, notices, timings)
    write_run_record(f"{args.out}.run.json", record)
    return 0


def _check_options(args: argparse.Namespace) -> None:
    if args.counts:
        unsupported = [flag for flag, on in (("--non-parametric", args.non_parametric),
                                             ("--mean-only", args.mean_only),
                                             ("--reference-batch",
                                              args.reference_batch is not None)) if on]
        if unsupported:
            verb = "apply" if len(unsupported) > 1 else "applies"
            raise InputError(f"{', '.join(unsupported)} {verb} to ComBat, not to ComBat-seq "
                             "(--counts); drop it or drop --counts.")
    elif args.group is not None:
        raise InputError("--group is ComBat-seq's condition (with --counts); for ComBat give "
                         "the covariates to keep with --protect, e.g. --protect '~ group'.")


def _combat(expression: pd.DataFrame, sheet: pd.DataFrame,
            args: argparse.Namespace) -> tuple[pd.DataFrame, dict[str, Any]]:
    from manylm.confounders.combat import fit_combat

    result = fit_combat(expression, args.batch, covariates=args.protect, samples=sheet,
                        parametric=not args.non_parametric, mean_only=args.mean_only,
                        reference_batch=args.reference_batch)
    priors = {batch: {key: _finite(value) for key, value in row.items()}
              for batch, row in result.priors.iterrows()}
    return result.adjusted, {
        "method": "ComBat (sva 3.46)",
        "batches": {str(k): int(v) for k, v in result.batch_sizes.items()},
        "protected_covariates": result.covariate_names,
        "priors": priors,
        "unadjusted_features": {"count": len(result.unadjusted),
                                "first": result.unadjusted[:20]},
    }


def _combat_seq(expression: pd.DataFrame, sheet: pd.DataFrame,
                args: argparse.Namespace) -> tuple[pd.DataFrame, dict[str, Any]]:
    from manylm.confounders.combat_seq import fit_combat_seq

    result = fit_combat_seq(expression, args.batch, group=args.group,
                            covariates=args.protect, samples=sheet)
    adjusted = result.adjusted
    if np.array_equal(adjusted.to_numpy(), np.round(adjusted.to_numpy())):
        adjusted = adjusted.astype(np.int64)
    return adjusted, {
        "method": "ComBat-seq (sva 3.46 ComBat_seq, shrink = FALSE)",
        "batches": {str(k): int(v) for k, v in result.batch_sizes.items()},
        "protected_covariates": result.covariate_names,
        "common_dispersion": {str(k): float(v) for k, v in result.common_dispersion.items()},
        "unadjusted_features": {"count": len(result.unadjusted),
                                "first": result.unadjusted[:20]},
    }


def _run_record(args: argparse.Namespace, expression: pd.DataFrame, sheet: pd.DataFrame,
                details: dict[str, Any], notices: list[str],
                timings: dict[str, float]) -> dict[str, Any]:
    checksum = True if args.checksum else None  # None: by size (file_fingerprint)
    return {
        "command": "combat",
        "argv": sys.argv[1:],
        "inputs": {"expression": file_fingerprint(args.expression, checksum=checksum),
                   "samples": file_fingerprint(args.samples, checksum=checksum)},
        "n_features": int(expression.shape[0]),
        "n_samples": int(expression.shape[1]),
        "samples": {"used": list(map(str, sheet.index))},
        "options": {"batch": args.batch, "protect": args.protect, "counts": args.counts,
                    "group": args.group, "parametric": not args.non_parametric,
                    "mean_only": args.mean_only, "reference_batch": args.reference_batch},
        **details,
        "output": str(Path(args.out).resolve()),
        "notices": notices,
        "versions": package_versions(),
        "timings_seconds": {k: round(v, 4) for k, v in timings.items()},
        "cpu_count": os.cpu_count(),
    }


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if np.isfinite(number) else None
