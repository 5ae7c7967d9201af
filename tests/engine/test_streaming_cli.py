"""``manylm fit`` through run_streaming_fit: the engine it picks, and the same files either way."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from manylm.cli.fit_command import FitRequest, run_fit
from manylm.cli.streaming_fit import choose_engine, parse_memory, run_streaming_fit
from manylm.errors import InputError
from reference_data import assert_close


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("streaming_cli")
    rng = np.random.default_rng(5)
    samples = pd.DataFrame({"sample": [f"S{i:02d}" for i in range(12)],
                            "group": np.repeat(["A", "B"], 6), "batch": np.tile(["x", "y"], 6)})
    samples.to_csv(folder / "samples.tsv", sep="\t", index=False)
    values = rng.normal(7, 1, (2500, 12))
    values[rng.random(values.shape) < 0.02] = np.nan
    frame = pd.DataFrame(values, columns=samples["sample"])
    frame.insert(0, "feature", [f"f{i:05d}" for i in range(2500)])
    frame.to_parquet(folder / "expr.parquet", index=False)
    frame.to_csv(folder / "expr.tsv", sep="\t", index=False)
    beta = frame.copy()
    beta.iloc[:, 1:] = 1 / (1 + np.exp(-(beta.iloc[:, 1:] - 7)))
    beta.to_parquet(folder / "beta.parquet", index=False)
    weights = frame.copy()
    weights.iloc[:, 1:] = rng.uniform(0.5, 2, values.shape)
    weights.to_parquet(folder / "weights.parquet", index=False)
    return {"dir": folder, "parquet": folder / "expr.parquet", "tsv": folder / "expr.tsv",
            "beta": folder / "beta.parquet", "samples": folder / "samples.tsv",
            "weights": folder / "weights.parquet"}


def request(files: dict[str, Path], out: Path, **options) -> FitRequest:
    return FitRequest(expression=str(options.pop("expression", files["parquet"])),
                      samples=str(files["samples"]), design="~ group + batch",
                      out=str(out), quiet=True, **options)


def flat(prior: dict) -> dict[str, float]:
    """``{"s2_prior": {"min": 1, ...}}`` as ``{"s2_prior.min": 1, ...}``; None (inf) as NaN."""
    out = {}
    for name, value in prior.items():
        for key, number in (value.items() if isinstance(value, dict) else [("", value)]):
            out[f"{name}.{key}"] = float("nan") if number is None else number
    return out


@pytest.mark.parametrize("options", [
    {"tests": ["group[B]"]},
    {"tests": ["group", "batch"], "trend": True, "sort": "none"},
    {"contrasts": ["BvsA=group[B]"], "robust": True, "sort": "t"},
    {"tests": ["group[B]"], "treat_lfc": 0.1},
    {"tests": ["group[B]"], "methylation": "beta", "expression": "beta"},
    {"tests": ["group[B]"], "moderate": False, "adjust": "holm", "confint": 0.9},
    {"tests": ["group[B]"], "weights": "weights"},
], ids=["t", "F-trend", "contrast-robust", "treat", "methylation", "ordinary-holm-ci90",
        "weights"])
def test_streamed_files_match_the_in_memory_ones(files, tmp_path: Path, options) -> None:
    if options.get("expression") == "beta":
        options["expression"] = files["beta"]
    if options.get("weights") == "weights":
        options["weights"] = str(files["weights"])
    memory_out, stream_out = tmp_path / "memory.tsv", tmp_path / "stream.tsv"
    run_fit(request(files, memory_out, **dict(options)))
    assert run_streaming_fit(request(files, stream_out, **dict(options)), memory=None,
                             dask=None, engine="streaming") == 0
    ours_table = pd.read_csv(stream_out, sep="\t")
    theirs_table = pd.read_csv(memory_out, sep="\t")
    assert list(ours_table.columns) == list(theirs_table.columns)
    assert list(ours_table["feature"]) == list(theirs_table["feature"])
    for column in theirs_table.columns[1:]:
        assert_close(ours_table[column], theirs_table[column], 1e-9, what=column)
    ours = json.loads(Path(f"{stream_out}.run.json").read_text())
    theirs = json.loads(Path(f"{memory_out}.run.json").read_text())
    for key in ("inputs", "n_features", "samples", "design", "tests", "options", "transform"):
        assert ours[key] == theirs[key], key
    assert ours["engine"]["name"] == "streaming"
    assert flat(ours["prior"]) == pytest.approx(flat(theirs["prior"]), rel=1e-9, nan_ok=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["memory.tsv", "memory.tsv.run.json", "stream.tsv", "stream.tsv.run.json"])


def test_dask_local_gives_the_in_memory_file(files, tmp_path: Path) -> None:
    """``manylm fit ... --dask local``: a LocalCluster started (and warmed up) for the run, the
    workers writing the table's rows into the run's temporary folder; the same table as in
    memory, and nothing left behind but the table and its record."""
    pytest.importorskip("distributed")
    memory_out, dask_out = tmp_path / "memory.tsv", tmp_path / "dask.tsv"
    run_fit(request(files, memory_out, tests=["group[B]"]))
    assert run_streaming_fit(request(files, dask_out, tests=["group[B]"]), memory=None,
                             dask="local") == 0
    ours = pd.read_csv(dask_out, sep="\t")
    theirs = pd.read_csv(memory_out, sep="\t")
    assert list(ours["feature"]) == list(theirs["feature"])
    for column in theirs.columns[1:]:
        assert_close(ours[column], theirs[column], 1e-9, what=column)
    record = json.loads(Path(f"{dask_out}.run.json").read_text())
    assert record["engine"]["name"] == "dask"
    assert record["engine"]["client_spill"] == "disk, written by the workers"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["memory.tsv", "memory.tsv.run.json", "dask.tsv", "dask.tsv.run.json"])


def test_small_files_stay_in_memory(files, tmp_path: Path) -> None:
    assert choose_engine(str(files["parquet"]), 12, None) == "in-memory"
    assert choose_engine(str(files["parquet"]), 12, parse_memory("100k")) == "streaming"
    out = tmp_path / "auto.tsv"
    run_streaming_fit(request(files, out, tests=["group[B]"]), memory=None, dask=None)
    assert "engine" not in json.loads(Path(f"{out}.run.json").read_text())
    # A text matrix cannot be streamed; without --memory it is simply read whole.
    run_streaming_fit(request(files, out, tests=["group[B]"], expression=files["tsv"]),
                      memory=None, dask=None)


def test_memory_budget_streams_and_spills(files, tmp_path: Path) -> None:
    out = tmp_path / "budget.tsv"
    run_streaming_fit(request(files, out, tests=["group[B]"]), memory=parse_memory("1M"),
                      dask=None)
    record = json.loads(Path(f"{out}.run.json").read_text())
    assert record["engine"]["name"] == "streaming"
    assert record["engine"]["memory_budget"] == "1.0 MiB"
    assert record["engine"]["spill"] == "disk"


@pytest.mark.parametrize(("options", "message"), [
    ({"expression": "tsv"}, "cannot be read a block of rows at a time"),
    ({"counts": True}, "--counts need(s) every feature in memory at once, so --memory"),
    ({"block": "batch"}, "--block need(s) every feature in memory"),
])
def test_what_cannot_be_streamed_is_said(files, tmp_path: Path, options, message) -> None:
    if options.get("expression") == "tsv":
        options["expression"] = files["tsv"]
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_streaming_fit(request(files, tmp_path / "x.tsv", tests=["group[B]"], **options),
                          memory=parse_memory("1G"), dask=None)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def block_files(files) -> dict[str, Path]:
    """The Parquet matrix of ``files`` as Zarr (manylm convert), HDF5 and AnnData, in stored
    blocks of 256 rows (the .h5ad in anndata's layout)."""
    from matrix_files import write_block_formats

    frame = pd.read_parquet(files["parquet"])
    return write_block_formats(frame, files["dir"], "expr", chunk_rows=256)


def assert_same_table(ours_path: Path, theirs_path: Path) -> None:
    ours, theirs = pd.read_csv(ours_path, sep="\t"), pd.read_csv(theirs_path, sep="\t")
    assert list(ours.columns) == list(theirs.columns)
    assert list(ours["feature"]) == list(theirs["feature"])
    for column in theirs.columns[1:]:
        assert_close(ours[column], theirs[column], 1e-9, what=column)


@pytest.mark.parametrize("memory", [None, "1M"], ids=["in-memory", "streamed"])
@pytest.mark.parametrize("suffix", ["zarr", "h5", "h5ad"])
def test_block_formats_give_the_parquet_table(files, block_files, tmp_path: Path, suffix: str,
                                              memory: str | None) -> None:
    """Zarr, HDF5 and AnnData matrices through ``manylm fit``'s engine choice: read whole when
    they fit (no --memory), streamed within --memory 1M; the table of the in-memory Parquet
    run either way, and a run record identifying the input (a Zarr store by its files)."""
    reference, out = tmp_path / "parquet.tsv", tmp_path / f"{suffix}.tsv"
    run_fit(request(files, reference, tests=["group[B]"], trend=True))
    path = block_files[suffix]
    assert run_streaming_fit(request(files, out, tests=["group[B]"], trend=True, expression=path),
                             memory=None if memory is None else parse_memory(memory),
                             dask=None) == 0
    assert_same_table(out, reference)
    record = json.loads(Path(f"{out}.run.json").read_text())
    assert record.get("engine", {}).get("name", "in-memory") == (
        "in-memory" if memory is None else "streaming")
    expression = record["inputs"]["expression"]
    assert expression["path"] == str(path.absolute())
    assert len(expression["sha256"]) == 64
    assert ("files" in expression) == (suffix == "zarr")
    assert record["n_features"] == 2500


@pytest.mark.parametrize("memory", [None, "1M"], ids=["in-memory", "streamed"])
def test_what_a_block_reader_warns_is_a_note_of_streamed_runs_only(
        files, tmp_path: Path, capsys, memory: str | None) -> None:
    """A CSR-sparse .h5ad costs a streamed run (every block reads the whole matrix): a note
    then, in manylm's words; nothing when it is read whole (no Python warning either way)."""
    anndata = pytest.importorskip("anndata")
    import scipy.sparse

    frame = pd.read_parquet(files["parquet"]).set_index("feature").fillna(0)
    anndata.AnnData(X=scipy.sparse.csr_matrix(frame.to_numpy().T),
                    obs=pd.DataFrame(index=frame.columns),
                    var=pd.DataFrame(index=frame.index)).write_h5ad(tmp_path / "csr.h5ad")
    fields = request(files, tmp_path / "t.tsv", tests=["group[B]"],
                     expression=tmp_path / "csr.h5ad").__dict__
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning that escapes fails the test
        assert run_streaming_fit(FitRequest(**{**fields, "quiet": False}),
                                 memory=None if memory is None else parse_memory(memory),
                                 dask=None) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "CSR" in line]
    assert len(notes) == (0 if memory is None else 1)
    assert all(line.startswith("manylm: note: ") for line in notes)


def test_zarr_through_the_command_line(files, block_files, tmp_path: Path) -> None:
    """The audit's commands: ``manylm fit X.zarr ...`` with and without --memory."""
    from manylm.cli.main import main

    base = ["fit", str(block_files["zarr"]), "--samples", str(files["samples"]), "--design",
            "~ group + batch", "--test", "group[T.B]", "--quiet"]
    assert main([*base, "--out", str(tmp_path / "whole.tsv")]) == 0
    assert main([*base, "--memory", "1M", "--out", str(tmp_path / "streamed.tsv")]) == 0
    assert_same_table(tmp_path / "streamed.tsv", tmp_path / "whole.tsv")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "streamed.tsv", "streamed.tsv.run.json", "whole.tsv", "whole.tsv.run.json"]


def test_an_input_gone_before_the_record_is_said_in_it(tmp_path: Path) -> None:
    """A streamed run builds its record while it fits: an input that cannot be read again by
    then is named as such in the record instead of failing a run whose table is complete."""
    from manylm.cli.fit_record import _fingerprint

    gone = _fingerprint(str(tmp_path / "removed.parquet"), None)
    assert gone["sha256"] is None and "could not be read again" in gone["unreadable"]


def test_text_weights_keep_a_large_matrix_in_memory(files, tmp_path: Path, monkeypatch) -> None:
    """A matrix large enough to be streamed by default, with weights in a text file (which
    only the in-memory reader reads): run in memory, as a text matrix of values is, instead of
    refusing the weights for streaming."""
    from manylm.engine import plan

    weights_tsv = tmp_path / "weights.tsv"
    pd.read_parquet(files["weights"]).to_csv(weights_tsv, sep="\t", index=False)
    monkeypatch.setattr(plan, "IN_MEMORY_MOST", 1)  # every streamable matrix is "large"
    out, plain = tmp_path / "w.tsv", tmp_path / "plain.tsv"
    assert run_streaming_fit(request(files, out, tests=["group[B]"], weights=str(weights_tsv)),
                             memory=None, dask=None) == 0
    assert "engine" not in json.loads(Path(f"{out}.run.json").read_text())
    assert run_streaming_fit(request(files, plain, tests=["group[B]"]), memory=None,
                             dask=None) == 0
    assert json.loads(Path(f"{plain}.run.json").read_text())["engine"]["name"] == "streaming"
    with pytest.raises(InputError, match="a block at a time"):
        run_streaming_fit(request(files, tmp_path / "m.tsv", tests=["group[B]"],
                                  weights=str(weights_tsv)), memory=parse_memory("1G"),
                          dask=None)
