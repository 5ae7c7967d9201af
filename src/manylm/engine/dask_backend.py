"""The two-pass engine on Dask: the streaming engine's chunk functions as Dask tasks.

One task per chunk of rows, as ``dask.delayed`` calls (the data: blocks of a dask.array, or
blocks read by the workers themselves from a block source, which pickles as its path):

1. **map**: read (or receive) a chunk and fit it (``fit_task``); the per-feature summaries stay
   in the workers' memory (persisted). Meanwhile the client gathers, chunk by chunk, what the
   variance prior needs (residual variances and df: 16 bytes per feature) and the feature IDs.
2. **reduce**: the client estimates the prior. When it is the same for every feature (no trend,
   not robust) the chunks get its few numbers and make their own posteriors where their fits
   are; otherwise each chunk's slice of the posteriors is sent to the cluster once.
3. **map**: each chunk's table rows (``table_task``). Workers that see the client's spill
   directory (the same machine, or a shared file system: :class:`~manylm.engine.dask_tasks.
   SharedTable`) write them into its files; others send them. The client then does the global
   step (adjustment, ordering) and the writing exactly as the streaming engine does. With
   B-statistics, the table tasks leave them out and also send each chunk's largest |t|
   (``chunk_top``), those above a floor that the posterior tasks prepare (each chunk's share of
   the largest |t|, ``share_of_top``), and the B-statistic's inputs per feature (16 bytes);
   the client merges the tops into the prior and computes the column (a chunk whose largest
   df is below the overall one makes a second small round of tasks propose its top again).
   Sorting by B needs them in the table: then two small reductions estimate the prior before
   the table tasks. A t table sorted by p and spilled is made late, as on one machine
   (:mod:`manylm.engine.late_table`): the table tasks give the chunks' fit fields and
   p-values instead of their table columns, and the client moderates the rows in output order
   as it writes them.

A lost worker is Dask's business: its tasks are run again elsewhere, and the summaries it held
are recomputed from the graph, so the table is the same (a table task run again writes the same
rows again). Every function here runs with the default scheduler when there is no
``distributed`` client (threads, in this process).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import itertools
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.design.matrix import Design
from manylm.engine import dask_tasks as tasks
from manylm.engine.chunk_model import FIT_FIELDS, ChunkModel
from manylm.engine.fit_pass import add_fit_fields
from manylm.engine.late_table import finish_late_table, late_table_applies
from manylm.engine.plan import plan_streaming
from manylm.engine.prior_reduce import (
    PriorEstimate,
    ScalarPrior,
    TopCandidates,
    TopFold,
    candidate_floor,
    coefficient_prior,
    estimate_prior,
    scalar_prior,
    share_of_top,
)
from manylm.engine.run_inputs import PreparedRun, prepare_run
from manylm.engine.spill import FeatureStore, IdStore, SpillDirectory, spill_parent
from manylm.engine.streaming import (
    StreamingResult,
    add_table_fields,
    refuse_invalid_ids,
    store_table_chunk,
    write_table_chunk,
)
from manylm.engine.streaming_table import finish_table
from manylm.errors import InputError
from manylm.interruptions import interruptions_held, sigterm_as_interrupt
from manylm.io.owned_names import owned_name, remove_orphans
from manylm.moderate.bstatistic import lods

__all__ = ["connect", "fit_dask", "run_prepared_on_dask"]

#: Target bytes of the values of one task's chunk (float64): large enough that the per-task
#: overhead (~1 ms on the scheduler, a round trip for the results) vanishes.
TASK_BYTES = 128 * 1024**2


def _dask() -> Any:
    try:
        import dask
    except ImportError:
        raise InputError("Running on Dask needs the optional dependency dask: pip install "
                         "'manylm[dask]' (or 'dask[array,distributed]').") from None
    return dask


@contextlib.contextmanager
def connect(address: str, *, timeout: str = "20s") -> Iterator[Any]:
    """A ``distributed`` client: ``"local"`` starts a LocalCluster in this process (one worker,
    a thread per core); any other value is the address of a running scheduler to join (waiting
    up to ``timeout`` for it to answer). Either way the workers load manylm's compiled kernels
    first (:class:`~manylm.engine.dask_worker.WarmUp`), as part of the start-up.

    The local cluster's worker is threads, not processes, as Dask advises for numerical work
    that releases the GIL (reading, NumPy and manylm's kernels all do): the fields of the fit
    go from the tasks to the client without being serialised or copied between processes, and
    nothing is held twice. On the benchmark's 10^7 features, a cluster of two one-thread
    worker processes took 12-18 s and 2.5 GB where one process takes 8.7-13 s; the threads
    take 10.1-10.7 s and 2.1-2.2 GB (``bench/README.md``). BLAS runs one thread per task
    while the cluster lives, as Dask sets it in the worker processes it spawns.
    """
    with interruptions_held():  # about a second of imports: see interruptions_held
        dask = _dask()
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise InputError("--dask needs dask.distributed: pip install "
                             "'dask[distributed]'.") from None
    if address == "local":
        from threadpoolctl import threadpool_limits

        from manylm.parallel import cpu_count

        # the scratch space for as long as the cluster lives
        with _scratch_space() as scratch, dask.config.set({"temporary-directory": str(scratch)}), \
                threadpool_limits(limits=1, user_api="blas"):
            # A failed task's traceback (a corrupt chunk) is logged by the worker; the run
            # reports the error itself, in one line.
            cluster = LocalCluster(n_workers=1, threads_per_worker=cpu_count(), processes=False,
                                   dashboard_address=None, silence_logs=logging.CRITICAL)
            try:
                with Client(cluster) as client:
                    _warm_workers(client)
                    yield client
            finally:
                cluster.close()
        return
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as error:
        raise InputError(
            f"--dask {address}: no Dask scheduler answered there ({error}). Give the "
            "scheduler's address (e.g. tcp://10.0.0.5:8786, printed by 'dask scheduler'), or "
            "--dask local for a cluster on this machine."
        ) from None
    with client:
        _warm_workers(client)
        yield client


#: The LocalCluster's scratch folder in TMPDIR (named by :func:`~manylm.io.owned_names.owned_name`).
_SCRATCH_PREFIX = "manylm-dask-"


@contextlib.contextmanager
def _scratch_space() -> Iterator[Path]:
    """A folder of its own in ``TMPDIR`` for the LocalCluster's ``dask-scratch-space`` (its
    lock files and anything the workers spill), removed when the cluster is done; one that a
    killed run left is removed by the next (:func:`~manylm.io.owned_names.remove_orphans`).
    Dask's default, ``TMPDIR/dask-scratch-space``, outlived every run."""
    parent = Path(tempfile.gettempdir())
    remove_orphans(parent, _SCRATCH_PREFIX)
    folder = parent / owned_name(_SCRATCH_PREFIX)
    folder.mkdir(mode=0o700)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _warm_workers(client: Any) -> None:
    from manylm.engine.dask_worker import WarmUp

    try:
        client.register_plugin(WarmUp())
    except Exception as error:  # raised on a worker: its environment, not this request
        raise InputError(
            f"The Dask workers could not load manylm ({type(error).__name__}: {error}). "
            "Install the same version of manylm (with its dependencies) where the workers "
            "run."
        ) from None


def fit_dask(
    data: Any,
    design: Design | str | pd.DataFrame | NDArray[np.float64],
    *,
    client: Any = None,
    feature_ids: Sequence[str] | None = None,
    sample_ids: Sequence[str] | None = None,
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
    rows_per_task: int | None = None,
    spill_dir: str | os.PathLike[str] | None = None,
) -> StreamingResult:
    """:func:`manylm.engine.fit_streaming` on Dask: the same table, computed by the workers.

    Parameters
    ----------
    data : dask.array.Array or FeatureBlockSource
        Features x samples. A dask array is used with its row chunks (its columns are put in
        one chunk); a block source (``open_feature_blocks(path)``) is read by the workers, in
        chunks of ``rows_per_task`` rows (the file must be reachable from every worker).
    design, samples, reference, coef, contrasts, moderate, trend, robust, treat_lfc,
    proportion, confint, adjust, sort_by, out, memory, spill_dir :
        As for :func:`manylm.engine.fit_streaming`; ``memory`` and ``spill_dir`` concern the
        client, which gathers and writes the table. Workers that see ``spill_dir`` (default:
        the folder of ``out``, else the temporary folder) write the table's rows there
        themselves: put it on a file system the workers share to spare the network.
    client : distributed.Client, optional
        The cluster (default: the current ``distributed`` client, or Dask's threads in this
        process when there is none).
    feature_ids, sample_ids : sequence of str, optional
        IDs for a dask array (default: features by position; samples in design order).
    weights : array, Series, dask.array or block source, optional
        One weight per sample, or a weights matrix with the data's rows and columns.
    rows_per_task : int, optional
        Rows per task (default: about 64 MB of float64 values, aligned with the storage).

    Returns
    -------
    StreamingResult
    """
    _dask()  # a clear message when dask is not installed
    source, weights_arg = tasks.as_dask_source(data, feature_ids, sample_ids, weights)
    run = prepare_run(source, design, samples=samples, reference=reference, coef=coef,
                      contrasts=contrasts, weights=weights_arg, moderate=moderate, trend=trend,
                      robust=robust, treat_lfc=treat_lfc, proportion=proportion,
                      confint=confint, adjust=adjust, sort_by=sort_by)
    return run_prepared_on_dask(run, client=client, out=out, memory=memory,
                                rows_per_task=rows_per_task, spill_dir=spill_dir,
                                collect=out is None)


def run_prepared_on_dask(run: PreparedRun, *, client: Any = None,
                         out: str | os.PathLike[str] | None, memory: int | None = None,
                         rows_per_task: int | None = None,
                         spill_dir: str | os.PathLike[str] | None = None, collect: bool = False,
                         progress: Callable[[int], None] | None = None) -> StreamingResult:
    """Run a checked request on Dask (see :func:`fit_dask`)."""
    dask = _dask()
    from dask import delayed

    client = client if client is not None else _current_client()
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    spans = _spans(run, rows_per_task)
    tag = uuid.uuid4().hex[:8]
    model = delayed(run.model, name=f"manylm-model-{tag}", traverse=False)
    chunk_model = run.model
    plan = plan_streaming(run.n_features, chunk_model.design.n_samples,
                          chunk_model.n_coefficients, memory=memory, n_jobs=1,
                          trend=chunk_model.trend, robust=chunk_model.robust)
    with sigterm_as_interrupt(), SpillDirectory(spill_parent(out, spill_dir)) as directory:
        assert directory.path is not None
        shared = _shared_table(client, directory.path, run)
        spill_path = directory.path if plan.spill or shared is not None else None
        results = FeatureStore(run.n_features, spill_path, prefix=TABLE_PREFIX)
        ids = None if run.positional_ids else IdStore(run.n_features, spill_path)
        try:
            states = [delayed(tasks.fit_task, pure=True)(
                model, _chunk_input(run, start, stop, tag),
                _weights_input(run, start, stop, tag), start, stop, run.samples,
                run.weights_samples)
                for start, stop in spans]
            states = list(_persist(dask, client, states))
            # What the prior needs of each feature, and the IDs, come while the workers fit
            # (the client has nothing else to do then): the prior is estimated here.
            gathered = _FitSummaries(run.n_features, chunk_model.trend)
            for (start, _), (chunk_ids, *parts) in zip(spans, _in_order(
                    dask, client, [delayed(tasks.fit_summary)(s, chunk_model.trend, ids is not None)
                                   for s in states], window=8), strict=True):
                gathered.add(start, *parts)
                if ids is not None:
                    ids.append(start, chunk_ids)
            if progress is not None:
                progress(run.n_features)
            timings["fit"] = time.perf_counter() - clock
            clock = time.perf_counter()
            prior = gathered.prior(chunk_model)
            del gathered
            n_keep = int(np.ceil(chunk_model.proportion / 2 * run.n_features))
            with_lods = chunk_model.has_lods and "lods" in run.value_columns
            lods_later = with_lods and run.sort_by != "B"  # sorting by B needs them in the table
            # With the B-statistics later, each posterior also holds the chunk's share of the
            # largest |t|, whose merge is a floor under the candidates (share_of_top).
            posteriors = list(_persist(dask, client, [
                delayed(tasks.posterior_task)(
                    chunk_prior, state, model,
                    share_of_top(n_keep, stop - start, run.n_features) if lods_later else 0)
                for state, chunk_prior, (start, stop) in zip(
                    states, _chunk_priors(client, prior, spans), spans, strict=True)]))
            refuse_invalid_ids(ids, run.source.path)  # meanwhile, the workers moderate
            summary = prior.summary() if prior.moderated else {}
            s2_prior_median = prior.s2_prior_median
            var_prior = ({} if lods_later else
                         _coefficient_priors(dask, client, chunk_model, model, states,
                                             posteriors, s2_prior_median, spans))
            floor = -np.inf
            if lods_later:
                (top_range,) = _gather(dask, client, [_tree(
                    [delayed(tasks.share_of_top_part)(p) for p in posteriors],
                    tasks.merge_t_ranges_task, n_keep)])
                floor = candidate_floor(top_range, n_keep)
            timings["prior"] = time.perf_counter() - clock
            clock = time.perf_counter()
            # A spilled t table sorted by p is made late on the client, as on one machine:
            # the table tasks send (or write) the fit's fields and the p-values.
            scalar = prior if isinstance(prior, ScalarPrior) else None
            late = late_table_applies(run, results, ids, scalar_prior=scalar is not None,
                                      collect=collect)
            if late and shared is not None:
                shared = dataclasses.replace(shared, value_columns=LATE_FIELDS)
            tables = [delayed(tasks.table_task)(model, state, posterior, var_prior, start,
                                                n_keep if lods_later else None, floor, shared,
                                                late)
                      for state, posterior, (start, _) in zip(states, posteriors, spans,
                                                              strict=True)]
            if late:
                add_fit_fields(results, 1)  # a late table tests one coefficient
                results.add("p_value")
            else:
                add_table_fields(run, results)
            later = _LaterBStatistics(results, n_keep, inputs=not late) if lods_later else None
            # Chunk tables arrive in row order, a few in flight at a time (or only word that
            # the workers wrote them into the files of ``results``).
            for (start, _), (columns, extra) in zip(
                    spans, _in_order(dask, client, tables, window=8), strict=True):
                if columns is not None and late:  # as the workers write them (SharedTable)
                    write_table_chunk(results.write, LATE_FIELDS, run.sort_by, start, columns)
                elif columns is not None:
                    store_table_chunk(run, results, start, columns)
                if later is not None:
                    later.add(start, extra)
            if later is not None:
                propose = functools.partial(_proposed_tops, dask, client, model,
                                            list(zip(states, posteriors, spans, strict=True)))
                b_prior = later.fold.prior(
                    proportion=chunk_model.proportion, stdev_coef_lim=chunk_model.stdev_coef_lim,
                    s2_prior_median=s2_prior_median, propose=propose)
                del propose  # the chunks' fits on the workers are no longer needed
                var_prior = {0: b_prior}
                if not late:
                    later.write(b_prior, chunk_model.proportion, plan.pass_rows)
            del states, posteriors, prior, tables
            timings["table"] = time.perf_counter() - clock
            clock = time.perf_counter()
            table = None
            if late:
                assert scalar is not None
                finish_late_table(run, results, results, ids,
                                  lambda _, variance, df: scalar.posterior(variance, df),
                                  var_prior, out=out, temp_dir=directory.path,
                                  block_rows=plan.pass_rows)
            else:
                table = finish_table(results, ids, columns=run.columns, adjust=run.adjust,
                                     sort_by=run.sort_by, out=out, collect=collect,
                                     temp_dir=directory.path, block_rows=plan.pass_rows)
            timings["write"] = time.perf_counter() - clock
        finally:
            results.close()
            if ids is not None:
                ids.close()
    return StreamingResult(
        table=table, n_features=run.n_features, moderated=run.model.moderate, prior=summary,
        engine={"name": "dask", "scheduler": _scheduler_name(client), "tasks": len(spans),
                "rows_per_task": spans[0][1] - spans[0][0],
                "client_spill": "memory" if spill_path is None else (
                    "disk" if shared is None else "disk, written by the workers")},
        timings=timings)


# ------------------------------------------------------------------------------ graph parts


class _FitSummaries:
    """What the variance prior needs of every feature, gathered chunk by chunk on the client
    (16 bytes per feature, 24 with a trend: what the plan reserves for the prior)."""

    def __init__(self, n_rows: int, trend: bool) -> None:
        self.variance = np.empty(n_rows)
        self.df = np.empty(n_rows)
        self.mean = np.empty(n_rows) if trend else None

    def add(self, start: int, variance: NDArray[np.float64], df: NDArray[np.float64],
            mean: NDArray[np.float64] | None) -> None:
        stop = start + variance.shape[0]
        self.variance[start:stop] = variance
        self.df[start:stop] = df
        if self.mean is not None:
            self.mean[start:stop] = mean

    def prior(self, model: ChunkModel) -> PriorEstimate | ScalarPrior:
        """The variance prior: a :class:`ScalarPrior` unless it varies by feature."""
        return (scalar_prior(model, self.variance, self.df)
                or estimate_prior(model, self.variance, self.df, self.mean))


def _chunk_priors(client: Any, prior: PriorEstimate | ScalarPrior,
                  spans: list[tuple[int, int]]) -> list[Any]:
    """What each chunk's posterior task gets: the scalar prior itself (a few numbers), or the
    chunk's slices of the per-feature posteriors, sent to the cluster once."""
    if isinstance(prior, ScalarPrior):
        return [prior] * len(spans)
    arrays = prior.per_feature()
    slices = [{**{name: values[start:stop].copy() for name, values in arrays.items()},
               **prior.scalars()} for start, stop in spans]
    if client is None:
        return slices
    return list(client.scatter(slices, hash=False))  # unique data: no need to hash it


#: File prefix of the client's table fields in its spill directory.
TABLE_PREFIX = "table."
#: What the table tasks give when the table is made late: the fit's fields and the p-values.
LATE_FIELDS = (*FIT_FIELDS, "p_value")


def _shared_table(client: Any, directory: Path, run: PreparedRun) -> tasks.SharedTable | None:
    """The spill directory as a :class:`~manylm.engine.dask_tasks.SharedTable` when every
    worker sees it (None without a ``distributed`` client, or when one does not)."""
    if client is None:
        return None
    token = uuid.uuid4().hex
    (directory / tasks.TOKEN_FILE).write_text(token)
    shared = tasks.SharedTable(str(directory), token, TABLE_PREFIX, tuple(run.value_columns),
                               run.sort_by)
    try:
        seen = client.run(shared.reachable)
    except Exception:  # a worker that cannot answer: the chunks come through Dask
        return None
    return shared if seen and all(seen.values()) else None



def _proposed_tops(dask: Any, client: Any, model: Any, chunks: list[tuple[Any, Any, Any]],
                   n_top: int, df_max: float, floor: float) -> list[TopCandidates]:
    """Each chunk's largest |t| converted to ``df_max``, above ``floor`` (in row order)."""
    from dask import delayed

    return _gather(dask, client, [
        delayed(tasks.candidates_task)(model, state, posterior, 0, n_top, df_max, floor, start)
        for state, posterior, (start, _) in chunks])


class _LaterBStatistics:
    """The B-statistics computed on the client once their prior is known.

    The table tasks leave them out and send, with each chunk's rows, its largest |t| and what
    the B-statistic needs of each feature (unscaled standard deviation, total df and, when it
    varies, the prior df); these are kept in ``results`` beside the table's columns (spilled
    like them) until :meth:`write` has made the ``lods`` column from them and the stored t.
    """

    FIELDS = tasks.LATER_B_FIELDS

    def __init__(self, results: FeatureStore, n_keep: int, *, inputs: bool = True) -> None:
        """``inputs=False``: only the tops are folded, for the prior (a late table makes the
        B-statistics from the fit's fields)."""
        self.results = results
        self.fold = TopFold(n_keep)
        self.df_prior: float | None = None
        self.inputs = inputs
        for name in self.FIELDS if inputs else ():
            results.add(name)

    def add(self, start: int, extra: Any) -> None:
        """A chunk's top |t| and per-feature inputs (None: a worker wrote them, see
        :class:`~manylm.engine.dask_tasks.SharedTable`)."""
        top, stdev, df_total, df_prior = extra
        self.fold.add(*top)
        if not self.inputs:
            return
        for name, values in zip(self.FIELDS, (stdev, df_total, df_prior), strict=True):
            if values is not None and np.ndim(values):
                self.results.write(name, start, np.asarray(values, dtype=np.float64))
        if df_prior is not None and np.ndim(df_prior) == 0:
            self.df_prior = float(df_prior)

    def write(self, var_prior: float, proportion: float, block_rows: int) -> None:
        results = self.results
        for start in range(0, results.n_rows, block_rows):
            stop = min(results.n_rows, start + block_rows)
            df_prior = (results.read("b.df_prior", start, stop) if self.df_prior is None
                        else self.df_prior)
            values = lods(results.read("t", start, stop),
                          results.read("b.stdev_unscaled", start, stop), var_prior,
                          results.read("b.df_total", start, stop), df_prior, proportion)
            results.write("lods", start, np.asarray(values, dtype=np.float64))
        for name in self.FIELDS:
            results.drop(name)


def _spans(run: PreparedRun, rows_per_task: int | None) -> list[tuple[int, int]]:
    source = run.source
    if isinstance(source, tasks.DaskArraySource):
        bounds = np.concatenate([[0], np.cumsum(source.array.chunks[0])]).astype(int)
        return [(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]
    n = run.n_features
    if rows_per_task is None:
        rows_per_task = max(1024, TASK_BYTES // max(1, len(source.sample_ids) * 8))
        natural = int(getattr(source, "natural_block_rows", 1) or 1)
        if 1 < natural <= rows_per_task:
            rows_per_task = rows_per_task // natural * natural
    return [(s, min(n, s + rows_per_task)) for s in range(0, n, rows_per_task)]


def _chunk_input(run: PreparedRun, start: int, stop: int, tag: str) -> Any:
    from dask import delayed

    source = run.source
    if isinstance(source, tasks.DaskArraySource):
        return source.block(start, stop, run.samples)
    return delayed(source, name=f"manylm-source-{tag}", traverse=False)  # read by fit_task


def _weights_input(run: PreparedRun, start: int, stop: int, tag: str) -> Any:
    from dask import delayed

    weights = run.weights_source
    if weights is None:
        return None
    if isinstance(weights, tasks.DaskArraySource):
        return weights.block(start, stop, run.weights_samples)
    return delayed(weights, name=f"manylm-weights-{tag}", traverse=False)


def _persist(dask: Any, client: Any, items: list[Any]) -> list[Any]:
    if client is not None:
        return list(client.persist(items))
    return list(dask.persist(*items))


def _gather(dask: Any, client: Any, items: list[Any]) -> list[Any]:
    if client is not None:
        return list(client.gather(client.compute(items)))
    return list(dask.compute(*items))


def _in_order(dask: Any, client: Any, items: list[Any], window: int) -> Iterator[Any]:
    """Results of ``items`` in order, with at most ``window`` computed ahead.

    Submitted and gathered half a window at a time, as one graph and one gather each: every
    submission and every fetch is a round trip (tens of ms), which one per item would pay for
    every chunk. The next half window computes while this one is used, so up to 1.5 windows of
    results are held. An error is the first failing item's in order.
    """
    if client is None:
        for item in items:
            yield dask.compute(item)[0]
        return
    size = max(1, window // 2)
    batches = collections.deque(client.compute(items[start:start + size])
                                for start in range(0, min(len(items), 2 * size), size))
    next_start = min(len(items), 2 * size)
    while batches:
        batch = batches.popleft()
        try:
            results = client.gather(batch)
        except Exception:
            for future in batch:  # the first failure in row order, as one at a time would
                future.result()
            raise
        if next_start < len(items):
            batches.append(client.compute(items[next_start:next_start + size]))
            next_start += size
        yield from results
        del results  # release the chunks here; their futures are gone with the batch


def _current_client() -> Any:
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError):
        return None


def _scheduler_name(client: Any) -> str:
    if client is None:
        return "local threads"
    info: dict[str, Any] = client.scheduler_info()
    return str(info.get("address", "distributed"))


def _coefficient_priors(dask: Any, client: Any, chunk_model: ChunkModel, model: Any,
                        states: list[Any], posteriors: list[Any], s2_prior_median: float,
                        spans: list[tuple[int, int]]) -> dict[int, float]:
    """The B-statistic's prior: two tree reductions over the chunks (see prior_reduce)."""
    from dask import delayed

    if not chunk_model.has_lods:
        return {}
    j = 0  # the tested coefficient, first (and only) column of the stored fits
    n_keep = int(np.ceil(chunk_model.proportion / 2 * spans[-1][1]))
    ranges = [delayed(tasks.t_range_task)(model, state, posterior, j, n_keep)
              for state, posterior in zip(states, posteriors, strict=True)]
    (merged,) = _gather(dask, client, [_tree(ranges, tasks.merge_t_ranges_task, n_keep)])
    n_top = int(np.ceil(chunk_model.proportion / 2 * merged.n_valid))
    floor = candidate_floor(merged, n_top)
    proposals = [delayed(tasks.candidates_task)(model, state, posterior, j, n_top,
                                                merged.df_max, floor, start)
                 for state, posterior, (start, _) in zip(states, posteriors, spans,
                                                         strict=True)]
    (best,) = _gather(dask, client, [_tree(proposals, tasks.merge_candidates_task, n_top)])
    return {j: coefficient_prior(best, merged.n_valid, merged.df_max,
                                 proportion=chunk_model.proportion,
                                 stdev_coef_lim=chunk_model.stdev_coef_lim,
                                 s2_prior_median=s2_prior_median)}


def _tree(items: list[Any], merge: Any, argument: Any, fan_in: int = 8) -> Any:
    """A tree of ``merge(argument, *group)`` tasks down to one (``merge`` is associative)."""
    from dask import delayed

    while len(items) > 1:
        items = [delayed(merge)(argument, *items[i:i + fan_in])
                 for i in range(0, len(items), fan_in)]
    return items[0]
