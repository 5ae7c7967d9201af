"""The streaming engine: a fit over features read from disk a block at a time, in bounded memory.

The two-pass shape of DESIGN.md, on one machine:

1. **map**: blocks of rows are read in order (the main thread reads the next block while worker
   threads fit the previous ones, BLAS held to one thread per worker); each block is fitted by
   ``lm_fit`` (and ``contrasts_fit``) and its per-feature summaries are stored (in memory, or
   spilled to files when they do not fit in the budget); feature IDs are stored as read.
2. **reduce**: the variance prior from all residual variances (``moderate_variances``); with
   B-statistics, the prior of non-zero coefficients from every chunk's largest |t|.
3. **map** over the stored summaries: each chunk is moderated with the prior and its table rows
   computed by ``top_table``; then one global step adjusts all p-values and orders the rows,
   and the table is written block by block, sorted by gathering rows from the store. A
   spilled t table sorted by p stores only its p-values here, and its rows are computed in
   output order as they are written (:mod:`manylm.engine.late_table`).

The table equals ``top_table(ebayes(lm_fit(...)))`` of the whole matrix (rows are independent
given the prior), whatever the block size or the number of threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.design.matrix import Design
from manylm.engine.chunk_model import (
    FIT_FIELDS,
    ChunkModel,
    moderated_chunk,
    table_chunk,
)
from manylm.engine.fit_pass import fit_pass
from manylm.engine.late_table import finish_late_table, late_table_applies
from manylm.engine.plan import plan_streaming
from manylm.engine.prior_reduce import (
    RunningFloor,
    ScalarPrior,
    TopCandidates,
    TopFold,
    TRange,
    chunk_top,
    estimate_prior,
    scalar_prior,
    top_candidates,
)
from manylm.engine.run_control import phase_timer, release_freed_memory
from manylm.engine.run_inputs import PreparedRun, prepare_run
from manylm.engine.spill import FeatureStore, IdStore, SpillDirectory, spill_parent
from manylm.engine.streaming_table import SORT_KEY_FIELD, finish_table, sort_key
from manylm.errors import DataError
from manylm.interruptions import sigterm_as_interrupt
from manylm.io._ids import blank_feature_ids_error, quote_ids
from manylm.moderate.bstatistic import lods
from manylm.moderate.moderated_fit import ModeratedFit

__all__ = ["StreamingResult", "add_table_fields", "fit_streaming", "run_prepared",
           "store_table_chunk", "write_table_chunk"]


@dataclass
class StreamingResult:
    """What a streamed (or distributed) run produced.

    Attributes
    ----------
    table : DataFrame or None
        The results table (indexed by feature) when no output file was given.
    n_features : int
    moderated : bool
    prior : dict
        ``df_prior`` and ``s2_prior``: a number, or min / median / max when per feature.
    engine : dict
        How it ran: engine name, memory budget, block rows, workers, spill.
    timings : dict of str to float
        Seconds per phase (wall clock), and CPU seconds of the process (``<phase>_cpu``).
    notes : list of str
        Things the user should know (e.g. stale spill directories removed).
    """

    table: pd.DataFrame | None
    n_features: int
    moderated: bool
    prior: dict[str, Any]
    engine: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def fit_streaming(
    data: Any,
    design: Design | str | pd.DataFrame | NDArray[np.float64],
    *,
    samples: pd.DataFrame | None = None,
    reference: Mapping[str, object] | None = None,
    coef: Any = None,
    contrasts: Sequence[str] | pd.DataFrame | None = None,
    weights: Any = None,
    moderate: bool = True,
    trend: bool = False,
    robust: bool = False,
    treat_lfc: float | None = None,
    proportion: float = 0.01,
    confint: float = 0.95,
    adjust: str = "BH",
    sort_by: str = "p",
    out: str | os.PathLike[str] | None = None,
    memory: int | None = None,
    block_rows: int | None = None,
    n_jobs: int | None = None,
    spill: bool | None = None,
    spill_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> StreamingResult:
    """Fit, moderate and tabulate every feature of a matrix read a block of rows at a time.

    The same numbers as ``top_table(ebayes(lm_fit(data, design)), coef)`` (or ``treat``, or
    ordinary statistics), computed in bounded memory: see :mod:`manylm.engine.streaming`.

    Parameters
    ----------
    data : FeatureBlockSource, array or DataFrame
        Features x samples: a block source (``manylm.io.block_sources.open_feature_blocks``)
        or a matrix in memory (wrapped in an :class:`~manylm.engine.ArraySource`).
    design, samples, reference :
        As for :func:`manylm.lm_fit`.
    coef : str, int or list, optional
        What to test, as for :func:`manylm.top_table` (several: an F table).
    contrasts : list of str or DataFrame, optional
        Contrasts of the coefficients to test instead (``contrasts_fit``): expressions such
        as ``"CvB = cancer[Cancer] - cancer[Biopsy]"``, or a coefficients x contrasts matrix.
    weights : array, Series or block source, optional
        One weight per sample, or a features x samples weights matrix (a block source, array
        or DataFrame with the data's features in the same order).
    moderate, trend, robust, treat_lfc, proportion :
        As for :func:`manylm.ebayes` / :func:`manylm.treat`; ``moderate=False`` gives ordinary
        statistics.
    confint, adjust, sort_by :
        As for :func:`manylm.top_table` (no filtering: every feature is in the table).
    out : path, optional
        Write the table there (TSV, CSV, gzip, Parquet by suffix; ``"-"``: standard output)
        instead of returning it.
    memory : int, optional
        Memory budget in bytes (default: a quarter of the free memory, 256 MiB to 1 GiB).
    block_rows, n_jobs : int, optional
        Rows per block (default from the budget) and fitting threads (default: every core).
    spill : bool, optional
        Force spilling summaries to files (True) or keeping them in memory (False).
    spill_dir : path, optional
        Where to spill (default: beside ``out``, or ``TMPDIR``).
    progress : callable, optional
        Called with the number of features fitted after each block.

    Returns
    -------
    StreamingResult
        With the table when ``out`` is None.
    """
    run = prepare_run(data, design, samples=samples, reference=reference, coef=coef,
                      contrasts=contrasts, weights=weights, moderate=moderate, trend=trend,
                      robust=robust, treat_lfc=treat_lfc, proportion=proportion,
                      confint=confint, adjust=adjust, sort_by=sort_by)
    return run_prepared(run, out=out, memory=memory, block_rows=block_rows, n_jobs=n_jobs,
                        spill=spill, spill_dir=spill_dir, progress=progress, collect=out is None)


def refuse_invalid_ids(ids: IdStore | None, label: str) -> None:
    """The errors the in-memory engine gives for blank or repeated feature IDs, over every
    chunk."""
    if ids is not None and ids.n_blank:
        raise blank_feature_ids_error(label, ids.n_blank, ids.blank_rows)
    repeated = [] if ids is None else ids.duplicates()
    if repeated:
        raise DataError(
            f"{label}: {len(repeated)} feature ID(s) occur more than once: "
            f"{quote_ids(repeated, 5)}; feature IDs must be unique: remove or rename the "
            f"repeated rows (or summarise them per feature beforehand)"
        )


def run_prepared(run: PreparedRun, *, out: str | os.PathLike[str] | None, memory: int | None,
                 block_rows: int | None = None, n_jobs: int | None = None,
                 spill: bool | None = None, spill_dir: str | os.PathLike[str] | None = None,
                 progress: Callable[[int], None] | None = None,
                 collect: bool = False) -> StreamingResult:
    """Run a checked request on this machine (see :func:`fit_streaming`)."""
    model = run.model
    plan = plan_streaming(
        run.n_features, run.model.design.n_samples, model.n_coefficients,
        itemsize=np.dtype(run.source.dtype).itemsize, memory=memory,
        natural_block_rows=int(getattr(run.source, "natural_block_rows", 1) or 1),
        n_jobs=n_jobs, block_rows=block_rows, weights_matrix=run.weights_source is not None,
        trend=model.trend, robust=model.robust, spill=spill)
    timings: dict[str, float] = {}
    release_freed_memory()
    with sigterm_as_interrupt(), SpillDirectory(spill_parent(out, spill_dir)) as directory:
        assert directory.path is not None
        spill_path = directory.path if plan.spill else None
        summaries = FeatureStore(run.n_features, spill_path, prefix="fit.")
        results = FeatureStore(run.n_features, spill_path, prefix="table.")
        ids = None if run.positional_ids else IdStore(run.n_features, spill_path)
        try:
            with phase_timer(timings, "fit"):
                fit_pass(run, plan, summaries, ids, progress)
                refuse_invalid_ids(ids, run.source.path)
            with phase_timer(timings, "prior"):
                prior = _estimate_prior(model, summaries)
            late = late_table_applies(run, results, ids, scalar_prior=prior.scalar is not None,
                                      collect=collect)
            with phase_timer(timings, "table"):
                var_prior = _table_pass(run, summaries, prior, results, plan.pass_rows,
                                        plan.n_workers, late=late)
                if not late:
                    summaries.close()
                    prior.arrays.clear()
            with phase_timer(timings, "write"):
                table = None
                if late:
                    finish_late_table(run, summaries, results, ids, prior.posterior, var_prior,
                                      out=out, temp_dir=directory.path,
                                      block_rows=plan.pass_rows)
                else:
                    table = finish_table(results, ids, columns=run.columns, adjust=run.adjust,
                                         sort_by=run.sort_by, out=out, collect=collect,
                                         temp_dir=directory.path, block_rows=plan.pass_rows)
        finally:
            summaries.close()
            results.close()
            if ids is not None:
                ids.close()
    notes = [f"removed a stale spill directory of a run that was killed: {path}"
             for path in directory.removed_stale]
    return StreamingResult(table=table, n_features=run.n_features, moderated=model.moderate,
                           prior=prior.summary, engine={"name": "streaming",
                                                                **plan.describe()},
                           timings=timings, notes=notes)


# ----------------------------------------------------------------------------------- reduce


@dataclass(frozen=True)
class _StoredPrior:
    """The prior as the chunks need it.

    A prior that is the same for every feature is ``scalar``, and each chunk makes its own
    posteriors from it. Otherwise ``arrays`` holds the per-feature results (``s2_post``,
    ``df_total``, and ``df_prior`` / ``s2_prior`` when they vary; ``common`` holds them when
    they do not), read-only, in memory: 16 to
    32 bytes per feature, within what the plan reserves for the prior's estimation, whose peak
    is over. They are not spilled (writing and reading them back cost more than the rest of
    the reduce); :func:`run_prepared` empties the dict after the table pass, before the
    p-values are adjusted.
    """

    s2_prior_median: float
    summary: dict[str, Any]
    scalar: ScalarPrior | None = None
    arrays: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    common: dict[str, float] = field(default_factory=dict)

    def posterior(self, start: int, variance: NDArray[np.float64],
                  df: NDArray[np.float64]) -> dict[str, Any]:
        """The posterior variances, total df and prior df and variance of the rows from
        ``start`` whose residual variances and df are given."""
        if self.scalar is not None:
            return self.scalar.posterior(variance, df)
        stop = start + variance.shape[0]
        return {**{name: values[start:stop] for name, values in self.arrays.items()},
                **self.common}


def _estimate_prior(model: ChunkModel, summaries: FeatureStore) -> _StoredPrior:
    variance = summaries.read_all("residual_variance")
    df = summaries.read_all("df_residual")
    scalar = scalar_prior(model, variance, df)
    if scalar is not None:
        return _StoredPrior(scalar.s2_prior_median,
                            scalar.summary() if scalar.moderated else {}, scalar)
    prior = estimate_prior(model, variance, df,
                           summaries.read_all("mean") if model.trend else None)
    arrays = prior.per_feature()
    for values in arrays.values():
        values.flags.writeable = False  # chunks get views, as from an in-memory store
    return _StoredPrior(prior.s2_prior_median, prior.summary() if prior.moderated else {},
                        arrays=arrays, common=prior.scalars())


def _chunk(model: ChunkModel, summaries: FeatureStore, prior: _StoredPrior, start: int,
           stop: int, var_prior: dict[int, float]) -> ModeratedFit:
    fields = {name: summaries.read(name, start, stop) for name in FIT_FIELDS}
    posterior = prior.posterior(start, fields["residual_variance"], fields["df_residual"])
    return moderated_chunk(model, fields, posterior, var_prior)


# ------------------------------------------------------------------------------------ map 2


def _table_pass(run: PreparedRun, summaries: FeatureStore, prior: _StoredPrior,
                results: FeatureStore, pass_rows: int, n_workers: int, *,
                late: bool = False) -> dict[int, float]:
    """Every chunk's table rows (and sort key) into ``results``, chunks on ``n_workers``;
    the B-statistic's prior (by position among the tested coefficients; empty without
    B-statistics). ``late`` (:mod:`manylm.engine.late_table`): the p-values only, and the
    B-statistic's prior without the B-statistics.

    With B-statistics, the chunks' table rows are computed first without them, each chunk
    also giving its largest |t| (:func:`chunk_top`); the B-statistic's prior is then
    estimated from those, and a pass over the stored t statistics computes the B-statistics.
    Sorting by B needs them in the first pass: the prior is then estimated by a pass of its own
    before the table. The threads moderate the chunks (reading and the statistics release the
    GIL); their results are merged here in row order. The columns that are fit fields as they
    are (:data:`ADOPTED_FIT_FIELDS`) are not written again: the fields move to ``results``
    at the end.
    """
    model = run.model
    adopted = {} if late else adopted_columns(run)
    if late:
        results.add("p_value")
    else:
        add_table_fields(run, results, adopted)
    n_rows = summaries.n_rows
    spans = [(s, min(n_rows, s + pass_rows)) for s in range(0, n_rows, pass_rows)]
    n_keep = int(np.ceil(model.proportion / 2 * n_rows))
    with_lods = model.has_lods and "lods" in run.value_columns
    prior_first = with_lods and run.sort_by == "B"
    model.tested_template  # noqa: B018 - made once here, before the threads share it
    with ThreadPoolExecutor(max(1, min(n_workers, len(spans))),
                            thread_name_prefix="manylm-table") as pool:

        def propose(n_top: int, df_max: float, floor: float) -> list[TopCandidates]:
            def proposed(span: tuple[int, int]) -> TopCandidates:
                result = _chunk(model, summaries, prior, span[0], span[1], {})
                return top_candidates(result, 0, n_top=n_top, df_max=df_max,
                                      first_row=span[0], floor=floor)

            return list(pool.map(proposed, spans))

        def b_prior(fold: TopFold) -> float:
            return fold.prior(proportion=model.proportion, stdev_coef_lim=model.stdev_coef_lim,
                              s2_prior_median=prior.s2_prior_median, propose=propose)

        var_prior: dict[int, float] = {}
        if prior_first:
            fold = TopFold(n_keep)
            for top in pool.map(lambda span: chunk_top(
                    _chunk(model, summaries, prior, span[0], span[1], {}), span[0], n_keep),
                    spans):
                fold.add(*top)
            var_prior = {0: b_prior(fold)}

        running = RunningFloor(n_keep)

        def moderate(span: tuple[int, int]) -> tuple[TRange, TopCandidates] | None:
            result = _chunk(model, summaries, prior, span[0], span[1], var_prior)
            later = with_lods and not prior_first
            if late:
                results.write("p_value", span[0],
                              np.asarray(result.p_value_of(0), dtype=np.float64))
            else:
                store_table_chunk(run, results, span[0], table_chunk(model, result,
                                                                     lods=not later), adopted)
            return chunk_top(result, span[0], n_keep, running) if later else None

        fold = TopFold(n_keep)
        for chunk_result in pool.map(moderate, spans):  # in row order; re-raises an error
            if chunk_result is not None:
                fold.add(*chunk_result)
        if with_lods and not prior_first:
            var_prior = {0: b_prior(fold)}
            if late:
                return var_prior

            def b_statistics(span: tuple[int, int]) -> None:
                start, stop = span
                posterior = prior.posterior(start, summaries.read("residual_variance", start, stop),
                                            summaries.read("df_residual", start, stop))
                values = lods(results.read("t", start, stop),
                              summaries.read("stdev_unscaled", start, stop)[:, 0],
                              var_prior[0], posterior["df_total"], posterior["df_prior"],
                              model.proportion)
                results.write("lods", start, np.asarray(values, dtype=np.float64))

            for done in pool.map(b_statistics, spans):
                del done
    for column, fit_field in adopted.items():  # the chunks are done with the fit's fields
        results.adopt(column, summaries, fit_field)
    return var_prior


def add_table_fields(run: PreparedRun, results: FeatureStore,
                     adopted: Collection[str] = ()) -> None:
    """The fields of the table's values (and of the sort key when it is not p), but those
    ``adopted`` from the fit's own fields."""
    for name in run.value_columns:
        if name not in adopted:
            results.add(name)
    if run.sort_by not in ("p", "none"):
        results.add(SORT_KEY_FIELD)


def store_table_chunk(run: PreparedRun, results: FeatureStore, start: int,
                      columns: dict[str, NDArray[np.float64]],
                      adopted: Collection[str] = ()) -> None:
    """A chunk's table columns (and its sort key) into ``results`` from row ``start``, but
    those ``adopted`` from the fit's own fields."""
    write_table_chunk(results.write, [c for c in run.value_columns if c not in adopted],
                      run.sort_by, start, columns)


#: Table columns that are fit fields as they are, by field, in a table of one coefficient:
#: the engine on one machine renames the fit's files instead of writing them again.
ADOPTED_FIT_FIELDS = {"estimate": "coefficients", "mean": "mean"}


def adopted_columns(run: PreparedRun) -> dict[str, str]:
    """The table columns taken from the fit's fields (:data:`ADOPTED_FIT_FIELDS`) in a t
    table (one tested coefficient)."""
    if len(run.model.tested()) != 1:
        return {}
    return {column: field for column, field in ADOPTED_FIT_FIELDS.items()
            if column in run.value_columns}


def write_table_chunk(write: Callable[[str, int, NDArray[np.float64]], None],
                      value_columns: Sequence[str], sort_by: str, start: int,
                      columns: dict[str, NDArray[np.float64]]) -> None:
    """``write(field, start, values)`` for each stored field of a chunk's table: its value
    columns (those in ``columns``: the B-statistics may come later) and its sort key."""
    for name in value_columns:
        if name in columns:
            write(name, start, columns[name])
    key = sort_key(columns, sort_by)
    if key is not None:
        write(SORT_KEY_FIELD, start, key)
