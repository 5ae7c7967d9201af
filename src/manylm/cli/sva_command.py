"""``manylm sva``: estimate surrogate variables and write them as a samples x SVs table."""

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
from manylm.cli.options import (
    MATRIX_FORMATS,
    add_checksum_option,
    add_design_options,
    notices_to_stderr,
    parse_references,
)
from manylm.confounders.num_sv import NUM_SV_METHODS
from manylm.confounders.sva import SVA_METHODS, SurrogateVariables, sva, svaseq
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
        "sva", help="estimate surrogate variables (sva / svaseq) and write them per sample",
        description="Estimate surrogate variables for EXPRESSION (R's sva; svaseq with "
        "--counts) from a full model (--design) and a null model (--null), and write them as a "
        "table: first column 'sample', then sv1..svK. Add them to a design as adjustment "
        "variables. When --n-sv auto finds no surrogate variable, nothing is written and the "
        "command says so (exit status 0).",
    )
    parser.add_argument("expression", metavar="EXPRESSION",
                        help=f"features x samples matrix: {MATRIX_FORMATS}")
    add_design_options(parser)
    parser.add_argument("--null", default="~ 1", metavar="FORMULA",
                        help="null model: the adjustment variables only (default '~ 1'); must "
                        "be nested in --design")
    parser.add_argument("--n-sv", default="auto", metavar="K|auto",
                        help="number of surrogate variables, or 'auto' to estimate it "
                        "(default auto)")
    parser.add_argument("--method", default="be", choices=NUM_SV_METHODS,
                        help="how 'auto' counts them: 'be' permutations (default, as R) or "
                        "'leek' asymptotics")
    parser.add_argument("--seed", type=int, default=None, metavar="N",
                        help="seed of the 'be' permutations (the same seed gives the same count)")
    parser.add_argument("--permutations", type=int, default=20, metavar="B",
                        help="permutations for 'be' (default 20)")
    parser.add_argument("--algorithm", default="irw", choices=SVA_METHODS,
                        help="sva algorithm: iteratively re-weighted (default), two-step, or "
                        "supervised (needs --controls)")
    parser.add_argument("--iterations", type=int, default=5, metavar="B",
                        help="iterations of the irw algorithm (default 5)")
    parser.add_argument("--controls", default=None, metavar="FILE",
                        help="table of feature IDs and the probability (0-1) that each is a "
                        "control feature: supervised sva")
    parser.add_argument("--counts", action="store_true",
                        help="EXPRESSION holds read counts: svaseq, on log(counts + constant)")
    parser.add_argument("--constant", type=float, default=1.0, metavar="C",
                        help="added to the counts before the log with --counts (default 1)")
    parser.add_argument("--out", required=True, metavar="SVFILE",
                        help="output table (.tsv, .csv, .parquet): sample, sv1..svK")
    parser.add_argument("--probabilities", default=None, metavar="FILE",
                        help="also write each feature's posterior probabilities (pprob_gam, "
                        "pprob_b) to FILE")
    add_checksum_option(parser)
    parser.add_argument("--quiet", action="store_true", help="no notes")
    parser.set_defaults(run=run)
    declare_files(parser, inputs=("expression", "samples", "controls"),
                  outputs=("out", "probabilities"))


def run(args: argparse.Namespace) -> int:
    clock = time.perf_counter()
    n_sv = _parse_n_sv(args.n_sv)
    if args.iterations < 1:
        raise InputError(f"--iterations must be at least 1; got {args.iterations}.")
    if args.permutations < 1:
        raise InputError(f"--permutations must be at least 1; got {args.permutations}.")
    if args.counts and not args.constant > 0:
        raise InputError(f"--constant must be positive; got {args.constant}.")
    if args.algorithm == "supervised" and not args.controls:
        raise InputError("--algorithm supervised needs --controls FILE (feature, probability).")
    check_table_path(args.out)
    if args.probabilities:
        check_table_path(args.probabilities)
    with notices_to_stderr(args.quiet) as notices:
        expression = read_matrix(args.expression)
        sheet = read_sample_sheet(args.samples)
        aligned, alignment_notes = align_samples(expression.columns, sheet,
                                                 matrix_label=args.expression,
                                                 sheet_label=args.samples)
        for note in alignment_notes:
            _note(note, args.quiet, notices)
        controls = _read_controls(args.controls, expression.index) if args.controls else None
        options: dict[str, Any] = {
            "samples": aligned, "reference": parse_references(args.reference), "n_sv": n_sv,
            "method": args.algorithm, "controls": controls, "iterations": args.iterations,
            "num_sv_method": args.method, "n_permutations": args.permutations,
            "seed": args.seed,
        }
        if args.counts:
            result = svaseq(expression, args.design, args.null, constant=args.constant,
                            **options)
        else:
            result = sva(expression, args.design, args.null, **options)
    seconds = time.perf_counter() - clock
    if result.n_sv == 0:
        how = ("num_sv '" + result.n_sv_method + "'" + (f", seed {args.seed}"
               if result.n_sv_method == "be" and args.seed is not None else "")
               if result.n_sv_method != "given" else "as requested")
        sys.stderr.write(f"manylm: no surrogate variables ({how}); nothing written to "
                         f"{args.out}.\n")
        return 0
    _note(f"{result.n_sv} surrogate variable(s) ({result.method}; number "
          f"{'given' if result.n_sv_method == 'given' else 'from num_sv ' + result.n_sv_method})",
          args.quiet, notices)
    table = result.surrogates.reset_index()
    write_table(table, args.out)
    if args.probabilities:
        write_table(_probabilities(result), args.probabilities)
    if args.out != "-":
        write_run_record(f"{args.out}.run.json", _run_record(args, expression, result, notices,
                                                             seconds))
    return 0


def _parse_n_sv(text: str) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"--n-sv must be a whole number or 'auto'; got {text!r}.") from None
    if value < 0:
        raise InputError(f"--n-sv must be 0 or more; got {value}.")
    return value


def _read_controls(path: str, features: pd.Index) -> pd.Series:
    table = read_matrix(path, kind="controls")
    column = table.columns[0]
    if table.shape[1] > 1:
        named = [c for c in table.columns if c.lower() in ("control", "controls", "probability")]
        if len(named) != 1:
            raise InputError(
                f"{path}: give one column of control probabilities (or name one of them "
                f"'control'); found columns {', '.join(map(str, table.columns[:10]))}.")
        column = named[0]
    values = table[column]
    lacking = features.difference(values.index)
    if len(lacking):
        raise InputError(f"{path}: no control probability for {len(lacking)} feature(s) of the "
                         f"expression matrix, e.g. {', '.join(map(str, lacking[:5]))}.")
    return values


def _probabilities(result: SurrogateVariables) -> pd.DataFrame:
    frame = pd.DataFrame({"pprob_gam": result.pprob_gam})
    if result.pprob_b is not None:
        frame["pprob_b"] = result.pprob_b
    frame.index.name = "feature"
    return frame.reset_index()


def _note(message: str, quiet: bool, notices: list[str]) -> None:
    notices.append(message)
    if not quiet:
        sys.stderr.write(f"manylm: note: {message}\n")


def _run_record(args: argparse.Namespace, expression: pd.DataFrame,
                result: SurrogateVariables, notices: list[str], seconds: float
                ) -> dict[str, Any]:
    checksum = True if args.checksum else None  # None: by size (file_fingerprint)
    inputs = {"expression": file_fingerprint(args.expression, checksum=checksum),
              "samples": file_fingerprint(args.samples, checksum=checksum)}
    if args.controls:
        inputs["controls"] = file_fingerprint(args.controls, checksum=checksum)
    return {
        "command": "sva",
        "argv": sys.argv[1:],
        "inputs": inputs,
        "n_features": int(expression.shape[0]),
        "n_features_used": int(expression.shape[0] - len(result.excluded_features)),
        "excluded_features": result.excluded_features[:100],
        "samples": list(result.surrogates.index),
        "design": {"full": args.design, "null": args.null,
                   "references": parse_references(args.reference)},
        "options": {
            "algorithm": result.method, "n_sv_requested": args.n_sv,
            "num_sv_method": args.method, "seed": args.seed, "permutations": args.permutations,
            "iterations": args.iterations, "counts": args.counts,
            "constant": args.constant if args.counts else None,
        },
        "n_sv": result.n_sv,
        "n_sv_chosen_by": result.n_sv_method,
        "sv_norms": [float(v) for v in np.linalg.norm(result.surrogates.to_numpy(), axis=0)],
        "output": str(Path(args.out).resolve()),
        "probabilities": None if not args.probabilities else str(
            Path(args.probabilities).resolve()),
        "notices": notices,
        "versions": package_versions(),
        "timings_seconds": {"total": round(seconds, 4)},
        "cpu_count": os.cpu_count(),
    }
