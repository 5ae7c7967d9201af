"""``manylm fit`` on matrices larger than memory: streamed from disk, or on a Dask cluster.

``run_streaming_fit`` is what ``manylm fit`` calls. It picks the engine: in memory (the usual
``run_fit``) when the matrix fits comfortably, otherwise the streaming engine, which reads the
matrix a block of rows at a time within ``--memory``; ``--dask local|ADDRESS`` runs the same
chunk functions on Dask. The design, the tests, the output columns and the run record are
fit_command's, so every engine writes the same table and a record of the same shape.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from manylm.cli.fit_command import FitRequest, _check_options, _note, _plan_tests, run_fit
from manylm.cli.fit_record import build_run_record
from manylm.cli.options import notices_to_stderr
from manylm.cli.progress import FeatureProgress
from manylm.design import design_matrix
from manylm.engine.dask_backend import connect, run_prepared_on_dask
from manylm.engine.plan import choose_engine as _choose_engine
from manylm.engine.plan import format_bytes, in_memory_bytes, parse_memory
from manylm.engine.run_inputs import prepare_run
from manylm.engine.streaming import run_prepared
from manylm.errors import InputError
from manylm.io import align_samples, check_table_path, read_sample_sheet, write_run_record
from manylm.io.block_sources import open_feature_blocks
from manylm.io.feature_blocks import FeatureBlockSource

__all__ = ["choose_engine", "parse_memory", "run_streaming_fit"]

Engine = Literal["in-memory", "streaming"]


def choose_engine(path: str, n_samples: int, memory: int | None, *,
                  n_features: int | None = None, available: int | None = None,
                  streamable: bool = True) -> Engine:
    """``"in-memory"`` or ``"streaming"`` for a matrix file (see :func:`manylm.engine.plan.
    choose_engine`): streamed when its in-memory peak exceeds 256 MiB (about 10^5 features of
    100 samples; streaming is faster from there), ``memory`` or, without a budget, half of the
    free memory."""
    return _choose_engine(path, n_samples, memory, n_features=n_features, available=available,
                          streamable=streamable)


def _whole_matrix_options(request: FitRequest) -> list[str]:
    """Options that need every feature in memory at once (normalisation across features...)."""
    flags = (("--counts", request.counts), ("--voom", request.voom),
             ("--filter", request.filter), ("--normalize", request.normalize is not None),
             ("--array-weights", request.array_weights),
             ("--quality-weights", request.quality_weights),
             ("--block", request.block is not None),
             ("--surrogates", request.surrogates is not None),
             ("--qvalue", request.qvalue), ("--report", request.report is not None))
    return [flag for flag, on in flags if on]


def run_streaming_fit(request: FitRequest, *, memory: int | None, dask: str | None,
                      engine: Engine | None = None) -> int:
    """Run ``manylm fit`` with the engine that suits the input, the memory and ``--dask``.

    Parameters
    ----------
    request : FitRequest
    memory : int or None
        ``--memory`` in bytes: stream within it when the in-memory peak would exceed it.
    dask : str or None
        ``--dask``: ``"local"`` or a scheduler address.
    engine : {"in-memory", "streaming"}, optional
        Force an engine (tests); default: :func:`choose_engine`.

    Returns
    -------
    int
        The exit status (0).
    """
    _check_options(request)
    if request.out not in (None, "-"):
        check_table_path(request.out)
    needs_whole = _whole_matrix_options(request)
    if needs_whole and (memory is not None or dask is not None or engine == "streaming"):
        what = "--memory" if memory is not None else ("--dask" if dask else "streaming")
        raise InputError(
            f"{', '.join(needs_whole)} need(s) every feature in memory at once, so {what} "
            "cannot be used with it: drop one, or prepare the matrix first (e.g. voom in "
            "Python) and stream the result."
        )
    if needs_whole or engine == "in-memory":
        run_fit(request)
        return 0
    # What opening the files for reading by blocks warns about (a CSR-sparse .h5ad read by
    # blocks, the library's own warnings) is said only if the run reads them so, as notes.
    with warnings.catch_warnings(record=True) as opening:
        warnings.simplefilter("always")
        source = _open(request.expression, memory=memory, dask=dask, forced=engine)
        in_memory = source is None
        if source is not None and dask is None and engine is None:
            chosen = choose_engine(request.expression, len(source.sample_ids), memory,
                                   n_features=source.n_features)
            # Weights that only the in-memory reader reads (a text matrix) take the run there,
            # as such a matrix of values does, unless --memory asks for streaming.
            whole_weights = memory is None and request.weights is not None and _open(
                request.weights, memory=None, dask=None, forced=None) is None
            in_memory = chosen == "in-memory" or whole_weights
    if in_memory:
        run_fit(request)
        return 0
    assert source is not None
    _run_streamed(request, source, memory=memory, dask=dask, opening=opening)
    return 0


def _open(path: str, *, memory: int | None, dask: str | None,
          forced: Engine | None) -> FeatureBlockSource | None:
    """The matrix as a block source, or None when it can only be read whole (and may be).

    Without --memory, --dask or a forced engine, a matrix the block readers refuse is left to
    the in-memory reader (:func:`manylm.io.read_matrix`): it reads text matrices and Parquet
    text columns, and its message (a missing file, a directory) does not speak of streaming.
    """
    try:
        return open_feature_blocks(path)
    except InputError as error:
        if memory is None and dask is None and forced is None:
            return None
        raise InputError(
            f"{error} (--memory, --dask and streaming read the matrix a block at a time)"
        ) from None


@dataclass(frozen=True)
class _MatrixShape:
    """What the run record reads of the matrix (never loaded whole here)."""

    shape: tuple[int, int]
    columns: list[str]


@dataclass(frozen=True)
class _NoPrior:
    """A stand-in for the result while the record is built (its prior is filled in after)."""

    moderated: bool = False


class _RecordInBackground:
    """The run record, built on another thread while the data are processed.

    The record holds a SHA-256 of every input file, which means reading it all once more
    (~0.7 s of CPU per GB). On Linux the thread runs at the lowest priority (nice 19, a
    per-thread setting there), so it takes the CPU the run leaves idle (the single-threaded
    parts of the reduce and of writing) instead of slowing the fit; whatever is left when the
    run ends is finished then. Fields known only at the end (prior, timings) are filled in by
    :meth:`result`.
    """

    def __init__(self, *args: Any) -> None:
        self._record: dict[str, Any] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._build, args=args, daemon=True,
                                        name="manylm-run-record")
        self._thread.start()

    def _build(self, *args: Any) -> None:
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        try:
            self._record = build_run_record(*args)
        except BaseException as error:  # re-raised by result(), in the main thread
            self._error = error

    def result(self, prior: dict[str, Any], timings: dict[str, float]) -> dict[str, Any]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._record is not None
        self._record["prior"] = prior
        self._record["timings_seconds"] = {k: round(v, 4) for k, v in timings.items()}
        return self._record


def _run_streamed(request: FitRequest, source: FeatureBlockSource, *, memory: int | None,
                  dask: str | None, opening: Sequence[warnings.WarningMessage] = ()) -> None:
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    with notices_to_stderr(request.quiet) as notices:
        for caught in opening:
            warnings.warn_explicit(caught.message, caught.category, caught.filename,
                                   caught.lineno)
        sheet = read_sample_sheet(request.samples)
        aligned, alignment_notes = align_samples(
            source.sample_ids, sheet, matrix_label=request.expression,
            sheet_label=request.samples)
        for note in alignment_notes:
            _note(note, request.quiet, notices)
        design = design_matrix(request.design, aligned, reference=request.references)
        tested, table_columns, contrasts = _plan_tests(request, design)
        weights = _open(request.weights, memory=memory, dask=dask, forced="streaming") \
            if request.weights else None
        transform: dict[str, Any] = {}
        if request.methylation == "beta":
            from manylm.counts import BETA_OFFSET

            transform = {"methylation": "beta to M-value", "offset": BETA_OFFSET}
        run = prepare_run(
            source, design, coef=table_columns, contrasts=contrasts or None, weights=weights,
            moderate=request.moderate, trend=request.trend, robust=request.robust,
            treat_lfc=request.treat_lfc, confint=request.confint, adjust=request.adjust,
            sort_by=request.sort, transform="beta_to_m" if transform else None)
        timings["read"] = time.perf_counter() - clock
        matrix: Any = _MatrixShape((source.n_features, len(source.sample_ids)),
                                   list(source.sample_ids))
        record = _RecordInBackground(request, matrix, design, aligned, _NoPrior(), tested,
                                     notices, {})
        out = request.out if request.out not in (None, "-") else "-"
        if dask is not None:
            with connect(dask) as client:
                result = run_prepared_on_dask(run, client=client, out=out, memory=memory)
        else:
            with FeatureProgress(source.n_features, "fitting",
                                 enabled=not request.quiet) as bar:
                result = run_prepared(run, out=out, memory=memory, progress=bar)
        for note in result.notes:
            _note(note, request.quiet, notices)
        timings.update(result.timings)
    # notices: the record holds the list itself, completed when the block above ended.
    finished = record.result(result.prior if result.moderated else {}, timings)
    finished["transform"] = transform
    finished["engine"] = {**result.engine, "in_memory_estimate": format_bytes(
        in_memory_bytes(source.n_features, len(source.sample_ids)))}
    if request.out not in (None, "-"):
        write_run_record(f"{request.out}.run.json", finished)
    else:
        sys.stdout.flush()
