"""``manylm fit``: read the matrix and the sample sheet, fit, moderate, write the table."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

import manylm
from manylm.cli.file_roles import declare_files
from manylm.cli.fit_record import build_run_record
from manylm.cli.fit_surrogates import add_surrogates, parse_surrogate_count
from manylm.cli.inputs import align_weights, block_labels, prepare_counts
from manylm.cli.options import (
    MATRIX_FORMATS,
    add_checksum_option,
    add_design_options,
    notices_to_stderr,
    parse_references,
)
from manylm.cli.progress import FeatureProgress
from manylm.counts import (
    BETA_OFFSET,
    NORMALIZATION_METHODS,
    VoomResult,
    array_weights,
    beta_to_m,
)
from manylm.design import Design, design_matrix, resolve_tests
from manylm.errors import ContrastError, InputError
from manylm.inference import ADJUST_METHODS
from manylm.inference.qvalue import QValues, qvalue
from manylm.io import (
    align_samples,
    check_table_path,
    read_matrix,
    read_sample_sheet,
    read_weights,
    write_run_record,
    write_table,
)

if TYPE_CHECKING:
    from manylm.report import ReportInputs

__all__ = [
    "FitOutcome",
    "FitRequest",
    "add_parser",
    "analyse",
    "report_inputs_from_run_record",
    "run_fit",
]

SORT_CHOICES = ("p", "t", "estimate", "none")


def add_parser(verbs: Any) -> None:
    parser = verbs.add_parser(
        "fit", help="fit the model to every feature and write the results table",
        description="Fit one linear model to every feature (row) of EXPRESSION and write one "
        "row of results per feature, with limma's moderated statistics.",
    )
    parser.add_argument("expression", metavar="EXPRESSION",
                        help=f"features x samples matrix: {MATRIX_FORMATS}")
    add_design_options(parser)
    parser.add_argument("--test", action="append", default=[], metavar="NAME",
                        help="coefficient, contrast or term to test (repeatable; several give an"
                        " F test)")
    parser.add_argument("--contrast", action="append", default=[], metavar="NAME=EXPR",
                        help="a contrast, e.g. 'CvB=cancer[Cancer]-cancer[Biopsy]' (repeatable)")
    parser.add_argument("--trend", action="store_true", help="prior variance trended on mean")
    parser.add_argument("--robust", action="store_true", help="robust prior (outlier features)")
    parser.add_argument("--treat-lfc", type=float, default=None, metavar="X",
                        help="test |estimate| > X instead of != 0 (limma treat)")
    parser.add_argument("--no-moderation", action="store_true",
                        help="ordinary least-squares t and F statistics")
    parser.add_argument("--adjust", default="BH", choices=ADJUST_METHODS,
                        help="p-value adjustment (default BH)")
    parser.add_argument("--qvalue", action="store_true",
                        help="add Storey q-values and local FDRs (columns q_value, lfdr; pi0 "
                        "in the run record)")
    parser.add_argument("--surrogates", metavar="K|auto", default=None,
                        help="estimate K surrogate variables (sva) for the tested coefficients "
                        "and adjust for them ('auto' chooses K by permutation)")
    parser.add_argument("--surrogate-method", choices=("be", "leek"), default="be",
                        help="how --surrogates auto chooses K (sva num.sv; default be)")
    parser.add_argument("--seed", type=int, default=1,
                        help="seed of the permutations of --surrogates auto (default 1)")
    parser.add_argument("--confint", type=float, default=0.95, metavar="LEVEL",
                        help="confidence level of ci_low/ci_high (default 0.95)")
    parser.add_argument("--weights", metavar="FILE", default=None,
                        help="features x samples observation weights, same layout as EXPRESSION")
    parser.add_argument("--array-weights", action="store_true",
                        help="estimate sample quality weights (limma arrayWeights, REML) and "
                        "fit with them")
    parser.add_argument("--block", metavar="COLUMN", default=None,
                        help="sample-sheet column of correlated samples (patient...): estimate "
                        "the intra-block correlation and fit by GLS (limma duplicateCorrelation)")
    counts = parser.add_argument_group("RNA-seq counts and methylation")
    counts.add_argument("--counts", action="store_true",
                        help="EXPRESSION holds raw read counts: analyse log-CPM (with --voom, "
                        "with precision weights)")
    counts.add_argument("--normalize", default=None, choices=NORMALIZATION_METHODS,
                        help="normalisation factors for --counts (default TMM)")
    counts.add_argument("--filter", action="store_true",
                        help="keep genes with enough counts (edgeR filterByExpr) for --counts")
    counts.add_argument("--voom", action="store_true",
                        help="voom precision weights from the mean-variance trend (--counts)")
    counts.add_argument("--quality-weights", action="store_true",
                        help="with --voom: also estimate sample quality weights (limma "
                        "voomWithQualityWeights)")
    counts.add_argument("--methylation", choices=("beta",), default=None,
                        help="EXPRESSION holds methylation beta values: analyse M-values")
    scale = parser.add_argument_group("large matrices")
    scale.add_argument("--memory", metavar="SIZE", default=None,
                       help="memory budget, e.g. 300M or 2G: stream the matrix from disk in blocks "
                       "within it (default: streamed when larger than about 10^5 x 100 or half "
                       "the free memory)")
    scale.add_argument("--dask", metavar="local|ADDRESS", default=None,
                       help="run on Dask: 'local' starts a cluster in this process (a thread per "
                       "core), an address (tcp://host:8786) joins a running scheduler")
    parser.add_argument("--sort", default="p", choices=SORT_CHOICES, help="row order (default p)")
    parser.add_argument("--out", metavar="FILE", default=None,
                        help="output table (.tsv, .csv, .parquet; default: stdout)")
    parser.add_argument("--report", metavar="FILE.html", default=None,
                        help="also write a self-contained HTML report (diagnostic plots, top "
                        "table, notes on trouble)")
    add_checksum_option(parser)
    parser.add_argument("--quiet", action="store_true", help="no notes, no progress bar")
    parser.set_defaults(run=run)
    declare_files(parser, inputs=("expression", "samples", "weights"),
                  outputs=("out", "report"))


@dataclass
class FitRequest:
    """Everything ``manylm fit`` needs, independent of argparse."""

    expression: str
    samples: str
    design: str
    tests: list[str] = field(default_factory=list)
    contrasts: list[str] = field(default_factory=list)
    references: dict[str, str] = field(default_factory=dict)
    trend: bool = False
    robust: bool = False
    treat_lfc: float | None = None
    moderate: bool = True
    adjust: str = "BH"
    confint: float = 0.95
    qvalue: bool = False
    surrogates: str | None = None
    surrogate_method: str = "be"
    seed: int = 1
    weights: str | None = None
    counts: bool = False
    normalize: str | None = None
    filter: bool = False
    voom: bool = False
    quality_weights: bool = False
    methylation: str | None = None
    block: str | None = None
    array_weights: bool = False
    sort: str = "p"
    out: str | None = None
    report: str | None = None
    quiet: bool = False
    checksum: bool = False


def run(args: argparse.Namespace) -> int:
    request = FitRequest(
        expression=args.expression, samples=args.samples, design=args.design, tests=args.test,
        contrasts=args.contrast, references=parse_references(args.reference), trend=args.trend,
        robust=args.robust, treat_lfc=args.treat_lfc, moderate=not args.no_moderation,
        adjust=args.adjust, confint=args.confint, qvalue=args.qvalue, weights=args.weights,
        surrogates=args.surrogates, surrogate_method=args.surrogate_method, seed=args.seed,
        counts=args.counts,
        normalize=args.normalize, filter=args.filter, voom=args.voom,
        quality_weights=args.quality_weights,
        methylation=args.methylation, block=args.block, array_weights=args.array_weights,
        sort=args.sort, out=args.out, report=args.report,
        quiet=args.quiet, checksum=args.checksum,
    )
    from manylm.cli.streaming_fit import parse_memory, run_streaming_fit

    memory = None if args.memory is None else parse_memory(args.memory)
    return run_streaming_fit(request, memory=memory, dask=args.dask)


@dataclass
class FitOutcome:
    """Everything one ``manylm fit`` run produced, before anything is written.

    ``expression`` and ``weights`` are what the model saw (log-CPM or M-values after a
    transform); ``sheet`` holds the samples used, in design order.
    """

    request: FitRequest
    sheet: pd.DataFrame
    design: Design
    expression: pd.DataFrame
    weights: pd.DataFrame | pd.Series | None
    fit: manylm.LinearModelFit
    result: manylm.ModeratedFit
    table: pd.DataFrame
    table_columns: list[str]
    record: dict[str, Any]
    voom: VoomResult | None = None
    surrogates: pd.DataFrame | None = None
    q_values: QValues | None = None  # with --qvalue: already in the table


def run_fit(request: FitRequest) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run the whole job; returns the table and the run record (both also written)."""
    from manylm.engine.spill import PREFIX, spill_parent
    from manylm.io.owned_names import remove_orphans

    # What a streamed run killed outright left where it would spill: a streamed run removes
    # it as it opens its own spill folder, which a run in memory never does.
    remove_orphans(spill_parent(request.out), PREFIX)
    if request.report:
        _check_report_path(request.report)
    outcome = analyse(request, keep_residuals=request.report is not None)
    if request.report:
        outcome.record["report"] = str(Path(request.report).absolute())
    write_table(outcome.table, request.out)
    if request.out not in (None, "-"):
        if outcome.surrogates is not None and outcome.surrogates.shape[1]:
            path = f"{request.out}.surrogates.tsv"
            write_table(outcome.surrogates.reset_index(), path)
            outcome.record["transform"]["surrogates"]["file"] = str(Path(path).absolute())
        write_run_record(f"{request.out}.run.json", outcome.record)
    if request.report:
        from manylm.cli.fit_report import report_inputs_from_outcome
        from manylm.report import write_report

        write_report(request.report, report_inputs_from_outcome(outcome))
        if not request.quiet:
            sys.stderr.write(f"manylm: report written to {request.report}\n")
    return outcome.table, outcome.record


def report_inputs_from_run_record(record: dict[str, Any], run_json_path: Path) -> ReportInputs:
    """Re-run a recorded ``manylm fit`` and return what its report shows (manylm report)."""
    from manylm.cli.fit_report import report_inputs_from_run_record as build

    return build(record, run_json_path)


def _check_report_path(path: str) -> None:
    target = Path(path)
    if target.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"--report {path}: the report is an HTML file; give a name ending in "
                         ".html.")
    if not target.absolute().parent.is_dir():
        raise InputError(f"--report {path}: the folder {target.absolute().parent} does not "
                         "exist.")


def analyse(request: FitRequest, *, keep_residuals: bool = False) -> FitOutcome:
    """Read, transform, fit, moderate and tabulate; write nothing."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    _check_options(request)
    if request.out not in (None, "-"):
        check_table_path(request.out)  # fail before any work on a bad output name
    voom_result: VoomResult | None = None
    with notices_to_stderr(request.quiet) as notices:
        expression = read_matrix(request.expression)
        sheet = read_sample_sheet(request.samples)
        aligned, alignment_notes = align_samples(
            expression.columns, sheet, matrix_label=request.expression,
            sheet_label=request.samples,
        )
        for note in alignment_notes:
            _note(note, request.quiet, notices)
        timings["read"] = time.perf_counter() - clock
        design = design_matrix(request.design, aligned, reference=request.references)
        if list(expression.columns) != list(design.sample_ids):  # else no copy of the matrix
            expression = expression[list(design.sample_ids)]
        weights: pd.DataFrame | pd.Series | None = None
        if request.weights:
            weights = read_weights(request.weights)
            weights = align_weights(weights, expression, request.weights)
        transform: dict[str, Any] = {}
        if request.counts:
            expression, count_weights, transform, voom_result = prepare_counts(
                expression, design, request)
            if weights is not None:  # the filter may have dropped features
                weights = weights.loc[expression.index, expression.columns]
            if count_weights is not None:
                weights = count_weights if weights is None else weights * count_weights
        elif request.methylation == "beta":
            expression = beta_to_m(expression, source=request.expression)
            transform = {"methylation": "beta to M-value", "offset": BETA_OFFSET}
        tested, table_columns, contrasts = _plan_tests(request, design)
        clock = time.perf_counter()
        surrogates = None
        if request.surrogates is not None:
            design, surrogates, transform["surrogates"] = add_surrogates(
                request, expression, design, table_columns, contrasts)
            found = surrogates.shape[1]
            _note(f"--surrogates: {found} surrogate variable(s) added to the design"
                  + (f" ({', '.join(surrogates.columns)})" if found else "")
                  + ".", request.quiet, notices)
            aligned = aligned.join(surrogates) if found else aligned
            timings["surrogates"] = time.perf_counter() - clock
            clock = time.perf_counter()
        if request.array_weights:
            quality = array_weights(expression, design)
            transform["array_weights"] = dict(zip(map(str, quality.index),
                                                  quality.round(6).tolist(), strict=True))
            # Per-sample weights alone keep the dense path; with other weights they multiply.
            weights = quality if weights is None else weights * quality
        block = block_labels(aligned, design, request)
        with FeatureProgress(expression.shape[0], "fitting", enabled=not request.quiet) as bar:
            fit = manylm.lm_fit(expression, design, weights=weights, block=block, progress=bar,
                                keep_residuals=keep_residuals)
        if fit.block_correlation is not None:
            transform["block"] = {"column": request.block,
                                  "consensus_correlation": fit.block_correlation}
            _note(f"intra-block correlation for {request.block}: {fit.block_correlation:.4f}",
                  request.quiet, notices)
        if contrasts:
            fit = manylm.contrasts_fit(fit, contrasts)
        timings["fit"] = time.perf_counter() - clock
        clock = time.perf_counter()
        if not request.moderate:
            result = manylm.ordinary_statistics(fit)
        elif request.treat_lfc is not None:
            result = manylm.treat(fit, lfc=request.treat_lfc, trend=request.trend,
                                  robust=request.robust)
        else:
            result = manylm.ebayes(fit, trend=request.trend, robust=request.robust)
        table = result.top_table(table_columns, sort_by=request.sort, adjust=request.adjust,
                                 confint=request.confint)
        timings["moderate_and_table"] = time.perf_counter() - clock
        q_values = _add_q_values(table) if request.qvalue else None
    table = table.reset_index()
    record = build_run_record(request, expression, design, aligned, result, tested, notices,
                              timings)
    record["transform"] = transform
    if q_values is not None:
        record["qvalue"] = q_values.summary()
    return FitOutcome(
        request=request, sheet=aligned.loc[list(design.sample_ids)], design=design,
        expression=expression, weights=weights, fit=fit, result=result, table=table,
        table_columns=table_columns, record=record, voom=voom_result, surrogates=surrogates,
        q_values=q_values,
    )


def _add_q_values(table: pd.DataFrame) -> QValues:
    """Storey q-values and local FDRs of the table's p-values, placed after adj_p_value."""
    found = qvalue(table["p_value"].to_numpy())
    position = list(table.columns).index("adj_p_value") + 1
    table.insert(position, "q_value", found.q_values)
    if found.lfdr is not None:
        table.insert(position + 1, "lfdr", found.lfdr)
    return found


def _check_options(request: FitRequest) -> None:
    needs_counts = [flag for flag, on in (("--voom", request.voom), ("--filter", request.filter),
                                          ("--normalize", request.normalize is not None)) if on]
    if request.quality_weights and not request.voom:
        raise InputError("--quality-weights estimates sample weights alongside voom's: add "
                         "--counts --voom.")
    if needs_counts and not request.counts:
        raise InputError(f"{', '.join(needs_counts)} work(s) on read counts: add --counts.")
    if request.counts and request.methylation:
        raise InputError("--counts and --methylation describe different data: give one.")
    if request.treat_lfc is not None and not request.moderate:
        raise InputError("--treat-lfc and --no-moderation cannot be combined: treat is moderated.")
    if request.treat_lfc is not None and request.treat_lfc < 0:
        raise InputError(f"--treat-lfc must be >= 0; got {request.treat_lfc}.")
    if not request.moderate and (request.trend or request.robust):
        raise InputError("--trend and --robust moderate the variances: drop --no-moderation.")
    if request.surrogates is not None:
        parse_surrogate_count(str(request.surrogates))
    if not 0 < request.confint < 1:
        raise InputError(f"--confint must be between 0 and 1; got {request.confint}.")


def _note(message: str, quiet: bool, notices: list[str]) -> None:
    notices.append(message)
    if not quiet:
        sys.stderr.write(f"manylm: note: {message}\n")


def _plan_tests(request: FitRequest, design: Design) -> tuple[list[str], list[str], list[str]]:
    """What to test: names as the user wrote them, table columns, and contrasts to form."""
    testable_terms = [t for t in design.terms if t != "Intercept"]
    if request.contrasts:
        from manylm.design import contrast_matrix

        matrix = contrast_matrix(request.contrasts, design.coefficient_names)
        names = [str(c) for c in matrix.columns]
        tests = request.tests or names
        contrasts = list(request.contrasts)
        columns: list[str] = []
        for test in tests:
            if test in names:
                columns.append(test)
                continue
            # A coefficient or term alongside contrasts: carried as unit contrasts.
            for coefficient in resolve_tests([test], design.coefficient_names, design.terms):
                label = coefficient
                if label not in names:
                    contrasts.append(f"{label} = {coefficient}")
                    names.append(label)
                columns.append(label)
        return tests, columns, contrasts
    if request.tests:
        columns = resolve_tests(request.tests, design.coefficient_names, design.terms)
        return list(request.tests), columns, []
    if len(testable_terms) == 1:
        term = testable_terms[0]
        return [term], list(design.terms[term]), []
    raise ContrastError(
        "Say what to test with --test NAME: the design has several terms "
        f"({', '.join(testable_terms) or 'none besides the intercept'}). Coefficients: "
        f"{', '.join(design.coefficient_names)}. Run 'manylm design' to list them."
    )
