"""The Dask backend gives the in-memory table, on a distributed cluster too, despite lost workers.

One LocalCluster (2 worker processes) serves the whole module.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import manylm
from late_tables import late_then_stored
from manylm.engine import ArraySource
from reference_data import assert_close

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

from manylm.engine import dask_tasks  # noqa: E402
from manylm.engine.dask_backend import _warm_workers, connect, fit_dask  # noqa: E402

FORMULA = "~ group + batch"
RTOL = 1e-9


@pytest.fixture(scope="module")
def client():
    # The workers must unpickle the test's own source classes.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    with distributed.Client(cluster) as dask_client:
        _warm_workers(dask_client)  # as connect() does
        yield dask_client
    cluster.close()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    rng = np.random.default_rng(11)
    samples = pd.DataFrame({"group": np.repeat(["A", "B"], 5), "batch": np.tile(["x", "y"], 5)},
                           index=[f"S{i}" for i in range(10)])
    y = 6 + rng.normal(size=(400, 10)) * np.sqrt(0.1 / rng.chisquare(4, (400, 1)) * 4)
    y[:20, 5:] += 1.0
    y[rng.random(y.shape) < 0.03] = np.nan
    ids = [f"g{i:03d}" for i in range(400)]
    return {"samples": samples, "expression": pd.DataFrame(y, index=ids, columns=samples.index),
            "weights": pd.DataFrame(rng.gamma(3, 0.3, y.shape), index=ids,
                                    columns=samples.index)}


def reference(data: dict[str, Any], coef: Any, *, weights: Any = None, trend: bool = False,
              robust: bool = False, treat_lfc: float | None = None, moderate: bool = True,
              sort_by: str = "p") -> pd.DataFrame:
    fit = manylm.lm_fit(data["expression"], FORMULA, samples=data["samples"], weights=weights)
    if not moderate:
        result = manylm.ordinary_statistics(fit)
    elif treat_lfc is not None:
        result = manylm.treat(fit, lfc=treat_lfc, trend=trend, robust=robust)
    else:
        result = manylm.ebayes(fit, trend=trend, robust=robust)
    return result.top_table(coef, sort_by=sort_by)


def assert_same_table(ours: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same columns and rows, in order; values to rtol 1e-9 (floor: 1e-9 x a column's median)."""
    assert list(ours.columns) == list(expected.columns)
    assert list(ours.index) == list(expected.index)
    for column in expected.columns:
        assert_close(ours[column], expected[column], RTOL, what=str(column))


def as_dask(frame: pd.DataFrame, rows: int) -> Any:
    return da.from_array(frame.to_numpy(), chunks=(rows, frame.shape[1]))


def test_threads_without_a_cluster(data) -> None:
    expected = reference(data, "group[B]", trend=True, robust=True)
    got = fit_dask(as_dask(data["expression"], 37), FORMULA, samples=data["samples"],
                   feature_ids=data["expression"].index, sample_ids=data["samples"].index,
                   coef="group[B]", trend=True, robust=True)
    assert_same_table(got.table, expected)
    assert got.engine["scheduler"] == "local threads"


@pytest.mark.parametrize("sort_by", ["p", "B"])
def test_b_statistics_when_a_chunk_has_no_complete_row(data, sort_by: str) -> None:
    """B-statistics after the table tasks (sorted by p), or their prior first (by B); a
    chunk with a lower largest df has its candidates proposed again at the overall df."""
    incomplete = dict(data, expression=data["expression"].copy())
    incomplete["expression"].iloc[:37, 2] = np.nan  # the first task's rows are incomplete
    expected = reference(incomplete, "group[B]", sort_by=sort_by)
    got = fit_dask(as_dask(incomplete["expression"], 37), FORMULA, samples=data["samples"],
                   feature_ids=data["expression"].index, sample_ids=data["samples"].index,
                   coef="group[B]", sort_by=sort_by)
    assert_same_table(got.table, expected)


@pytest.mark.parametrize("case", [
    {"coef": "group[B]"},
    {"coef": "group[B]", "trend": True, "robust": True, "sort_by": "none"},
    {"coef": ["group[B]", "batch[y]"], "robust": True},
    {"coef": "group[B]", "treat_lfc": 0.2},
    {"coef": "group[B]", "sort_by": "B"},
], ids=["t", "trend-robust-unsorted", "F", "treat", "by-B"])
def test_block_source_on_a_cluster(client, data, case: dict[str, Any]) -> None:
    options = {k: v for k, v in case.items() if k != "coef"}
    expected = reference(data, case["coef"], **options)
    got = fit_dask(ArraySource(data["expression"]), FORMULA, samples=data["samples"],
                   coef=case["coef"], client=client, rows_per_task=61, **options)
    assert_same_table(got.table, expected)
    assert got.engine["name"] == "dask" and got.engine["tasks"] == 7
    assert got.engine["client_spill"] == "disk, written by the workers"


@pytest.mark.parametrize("sort_by", ["p", "B"])
def test_workers_that_cannot_see_the_client_send_their_rows(client, data, monkeypatch,
                                                           sort_by: str) -> None:
    """Workers that do not see the client's spill directory (another machine) send the
    table's rows through Dask instead of writing them: the same table."""
    from manylm.engine import dask_tasks

    expected = reference(data, "group[B]", sort_by=sort_by)
    monkeypatch.setattr(dask_tasks.SharedTable, "reachable", lambda self: False)
    got = fit_dask(ArraySource(data["expression"]), FORMULA, samples=data["samples"],
                   coef="group[B]", client=client, rows_per_task=61, sort_by=sort_by)
    assert got.engine["client_spill"] == "memory"
    assert_same_table(got.table, expected)


def test_a_table_task_that_cannot_see_the_directory_returns_its_rows(data, tmp_path) -> None:
    """A worker that joins later and does not see the directory sends its rows (the token
    decides: a directory of the same name elsewhere is not the client's)."""
    from manylm.engine import dask_tasks

    (tmp_path / dask_tasks.TOKEN_FILE).write_text("another run")
    shared = dask_tasks.SharedTable(str(tmp_path), "this run", "table.", ("t",), "p")
    assert not shared.reachable()
    assert not dask_tasks.SharedTable(str(tmp_path / "gone"), "x", "", (), "p").reachable()


def test_dask_arrays_with_weights_to_a_file(client, data, tmp_path: Path) -> None:
    expected = reference(data, "group[B]", weights=data["weights"])
    got = fit_dask(as_dask(data["expression"], 50), FORMULA, samples=data["samples"],
                   feature_ids=data["expression"].index, sample_ids=data["samples"].index,
                   weights=as_dask(data["weights"], 64), coef="group[B]", client=client,
                   out=tmp_path / "table.tsv")
    assert got.table is None
    table = pd.read_csv(tmp_path / "table.tsv", sep="\t", index_col=0)
    table.index = table.index.astype(str)
    expected.index.name = "feature"
    assert_same_table(table, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.tsv"]


def test_a_weights_file_on_a_cluster(client, data, tmp_path: Path) -> None:
    """A weights file read by the workers: a negative weight is named with the file, its
    feature and sample, as the other engines name it; its samples are matched by name."""
    from manylm.errors import DataError
    from manylm.io.block_sources import open_feature_blocks

    weights = data["weights"].copy()
    weights.iloc[130, 2] = -1.0
    weights.reset_index(names="feature").to_parquet(tmp_path / "w.parquet")
    data["expression"].reset_index(names="feature").to_parquet(tmp_path / "y.parquet")
    with pytest.raises(DataError, match=r"w.parquet: feature 'g130', sample 'S2': weight -1.0 "
                                        r"is negative"):
        fit_dask(open_feature_blocks(tmp_path / "y.parquet"), FORMULA, samples=data["samples"],
                 weights=open_feature_blocks(tmp_path / "w.parquet"), coef="group[B]",
                 client=client, rows_per_task=61)
    # stored in another order, the weights are matched to the samples by name
    expected = reference(data, "group[B]", weights=data["weights"])
    shuffled = data["weights"][list(data["weights"].columns[::-1])]
    shuffled.reset_index(names="feature").to_parquet(tmp_path / "w.parquet")
    got = fit_dask(open_feature_blocks(tmp_path / "y.parquet"), FORMULA, samples=data["samples"],
                   weights=open_feature_blocks(tmp_path / "w.parquet"), coef="group[B]",
                   client=client, rows_per_task=61)
    assert_same_table(got.table, expected)


@pytest.mark.parametrize("case", [
    {},
    {"treat_lfc": 0.2},
    {"moderate": False},
    {"unreachable": True},
], ids=["t", "treat", "unmoderated", "rows-sent"])
def test_late_table_on_a_cluster(client, data, tmp_path: Path, monkeypatch,
                                 case: dict[str, Any]) -> None:
    """A t table sorted by p, to a file, is made late on the client from the fit's fields the
    table tasks give (written by the workers, or sent): byte for byte the table made from the
    stored columns, with the in-memory numbers."""
    from manylm.engine import dask_backend

    options = {k: v for k, v in case.items() if k != "unreachable"}
    if case.get("unreachable"):
        monkeypatch.setattr(dask_tasks.SharedTable, "reachable", lambda self: False)
        planned = dask_backend.plan_streaming  # rows sent: the client spills them itself
        monkeypatch.setattr(dask_backend, "plan_streaming",
                            lambda *args, **kwargs: planned(*args, **{**kwargs, "spill": True}))
    def run(name: str) -> bytes:
        fit_dask(ArraySource(data["expression"]), FORMULA, samples=data["samples"],
                 coef="group[B]", client=client, rows_per_task=61, out=tmp_path / name,
                 **options)
        return (tmp_path / name).read_bytes()

    late, stored, made_late = late_then_stored(monkeypatch, dask_backend, run)
    assert made_late == [True]
    assert late == stored
    table = pd.read_csv(tmp_path / "late.tsv", sep="\t", index_col=0)
    table.index = table.index.astype(str)
    expected = reference(data, "group[B]", **options)
    expected.index.name = "feature"
    assert_same_table(table, expected)


class DiesOnce(ArraySource):
    """Kills the worker process reading rows 122-182 the first time they are read."""

    def __init__(self, data: pd.DataFrame, marker: Path) -> None:
        super().__init__(data)
        self.marker = str(marker)

    def read(self, start: int, stop: int, samples=None):
        if start == 122 and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os._exit(1)  # as if the machine went away: no clean-up, no exception
        return super().read(start, stop, samples)


def test_a_lost_worker_is_replaced_and_the_table_is_the_same(client, data,
                                                             tmp_path: Path) -> None:
    expected = reference(data, "group[B]", trend=True)
    marker = tmp_path / "killed"
    got = fit_dask(DiesOnce(data["expression"], marker), FORMULA, samples=data["samples"],
                   coef="group[B]", trend=True, client=client, rows_per_task=61)
    assert marker.exists()  # a worker did die, mid-run
    assert_same_table(got.table, expected)


def test_every_worker_is_warmed_up(client) -> None:
    """The workers loaded the compiled kernels when they joined (manylm.engine.dask_worker),
    the one that replaced a lost worker too (after test_a_lost_worker...)."""
    client.wait_for_workers(2, timeout=60)
    names = client.run(lambda dask_worker: sorted(dask_worker.plugins))
    assert len(names) == 2
    assert all("manylm-warm-up" in found for found in names.values())

    def loaded(dask_worker: object) -> list[int]:
        """Compiled versions of the kernels a Parquet chunk with a missing value needs."""
        from manylm.fit.projection_kernel import _fit_columns, _fit_rows
        from manylm.fit.weighted import _rows_kernel

        return [len(kernel.signatures) for kernel in (_fit_columns, _fit_rows, _rows_kernel)]

    assert all(min(counts) > 0 for counts in client.run(loaded).values())


@dataclasses.dataclass(frozen=True)
class DiesWhileWritingRows(dask_tasks.SharedTable):
    """Kills the worker writing the table rows from row 122, half-way, the first time."""

    marker: str = ""

    def write_rows(self, name: str, start: int, values) -> None:
        if start == 122 and name == "p_value" and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os._exit(1)  # some of the chunk's columns written, the others not
        super().write_rows(name, start, values)


@pytest.mark.parametrize("to_file", [False, True], ids=["collected", "late-to-file"])
def test_a_worker_lost_while_writing_table_rows(client, data, tmp_path: Path,
                                                monkeypatch, to_file: bool) -> None:
    """The table task run again elsewhere writes the same rows again: the same table (its
    columns collected, or the fit's fields of a table made late and written to a file)."""
    from manylm.engine import dask_backend

    expected = reference(data, "group[B]")
    marker = tmp_path / "killed"
    made = dask_backend._shared_table

    def dying(client, directory, run):
        shared = made(client, directory, run)
        assert shared is not None  # the workers see the client's folder
        return DiesWhileWritingRows(**dataclasses.asdict(shared), marker=str(marker))

    monkeypatch.setattr(dask_backend, "_shared_table", dying)
    out = tmp_path / "table.tsv" if to_file else None
    got = fit_dask(ArraySource(data["expression"]), FORMULA, samples=data["samples"],
                   coef="group[B]", client=client, rows_per_task=61, out=out)
    assert marker.exists()  # a worker did die, mid-write
    assert got.engine["client_spill"] == "disk, written by the workers"
    if out is None:
        assert_same_table(got.table, expected)
        return
    table = pd.read_csv(out, sep="\t", index_col=0)
    table.index = table.index.astype(str)
    expected.index.name = "feature"
    assert_same_table(table, expected)


def test_local_cluster_is_threads_in_this_process(monkeypatch, tmp_path) -> None:
    """``--dask local`` runs one worker of this process, a thread per core (no worker
    processes: nothing to serialise between them, nothing held twice), with BLAS at one thread
    per task while the cluster lives and as before after. Its scratch space is a folder of the
    run's in TMPDIR, removed after (Dask's default one outlived every run)."""
    import tempfile

    from threadpoolctl import threadpool_info

    from manylm.parallel import cpu_count

    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info()
                if pool["user_api"] == "blas"}

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    before = blas_threads()
    with connect("local") as local:
        workers = local.scheduler_info()["workers"]
        assert [w["nthreads"] for w in workers.values()] == [cpu_count()]
        assert set(local.run(os.getpid).values()) == {os.getpid()}
        assert set(local.submit(blas_threads, pure=False).result()) <= {1}
        scratch = set(local.run(lambda dask_worker: dask_worker.local_directory).values())
    assert blas_threads() == before
    assert all(Path(folder).is_relative_to(tmp_path) and
               Path(folder).relative_to(tmp_path).parts[0].startswith("manylm-dask-")
               for folder in scratch), scratch
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_scheduler_is_a_clear_error() -> None:
    with pytest.raises(manylm.InputError, match="no Dask scheduler answered"), \
            connect("tcp://127.0.0.1:9", timeout="1s"):
        pass


def test_b_statistics_when_the_largest_t_are_in_one_chunk(data) -> None:
    """The floor from each chunk's share of the largest |t| (what lets the table tasks send
    few candidates) is a lower bound however the large |t| are spread: here all in one task."""
    rng = np.random.default_rng(5)
    y = rng.normal(size=(4000, 10)) + 6
    y[3000:3150, 5:] += 2.0  # 150 > n_keep = 20 strong features, in the seventh of 8 tasks
    ids = [f"f{i}" for i in range(4000)]
    frame = pd.DataFrame(y, index=ids, columns=data["samples"].index)
    expected = reference({"expression": frame, "samples": data["samples"]}, "group[B]")
    got = fit_dask(as_dask(frame, 500), FORMULA, samples=data["samples"], feature_ids=ids,
                   sample_ids=data["samples"].index, coef="group[B]")
    assert_same_table(got.table, expected)
