"""Block readers (Parquet, Zarr, HDF5, AnnData) and the streaming converter, on small files."""

from __future__ import annotations

import errno
import pickle
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from manylm.errors import DataError, InputError, ManylmWarning
from manylm.io import read_matrix
from manylm.io.block_sources import open_feature_blocks
from manylm.io.convert import convert_matrix
from manylm.io.feature_blocks import FeatureBlockSource
from matrix_files import corrupt_bytes

h5py = pytest.importorskip("h5py")
zarr = pytest.importorskip("zarr")

N_FEATURES, N_SAMPLES, STORED_ROWS = 1000, 6, 128
SAMPLES = [f"s{j}" for j in range(N_SAMPLES)]
FEATURES = [f"g{i:04d}" for i in range(N_FEATURES)]


def make_values(dtype: type) -> np.ndarray:
    rng = np.random.default_rng(7)
    values = rng.normal(8, 1, (N_FEATURES, N_SAMPLES)).astype(dtype)
    values[rng.random(values.shape) < 0.02] = np.nan
    return values


def write_parquet(path: Path, values: np.ndarray, *, row_group_size: int = STORED_ROWS) -> Path:
    table = pa.table({"feature": FEATURES, **{s: values[:, j] for j, s in enumerate(SAMPLES)}})
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def write_hdf5(path: Path, values: np.ndarray, **options: object) -> Path:
    with h5py.File(path, "w") as f:
        f.create_dataset("values", data=values, chunks=(STORED_ROWS, N_SAMPLES), **options)
        f.create_dataset("feature_ids", data=FEATURES, dtype=h5py.string_dtype())
        f.create_dataset("sample_ids", data=SAMPLES, dtype=h5py.string_dtype())
    return path


def write_h5ad(path: Path, values: np.ndarray, sparse: str | None = None) -> Path:
    anndata = pytest.importorskip("anndata")
    import scipy.sparse

    x = values.T.copy()
    if sparse:
        x = np.nan_to_num(x)
        x = scipy.sparse.csc_matrix(x) if sparse == "csc" else scipy.sparse.csr_matrix(x)
    adata = anndata.AnnData(X=x, obs=pd.DataFrame(index=SAMPLES),
                            var=pd.DataFrame(index=FEATURES))
    adata.write_h5ad(path)
    return path


def write_zarr(path: Path, values: np.ndarray) -> Path:
    """The layout written with zarr itself, chunked differently (IDs not like the values)."""
    group = zarr.open_group(path, mode="w")
    group.create_array("values", data=values, chunks=(STORED_ROWS, 4))
    group.create_array("feature_ids", data=np.array(FEATURES, dtype="T"), chunks=(300,))
    group.create_array("sample_ids", data=np.array(SAMPLES, dtype="T"))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, np.ndarray]]:
    folder = tmp_path_factory.mktemp("blocks")
    y64, y32 = make_values(np.float64), make_values(np.float32)
    parquet = write_parquet(folder / "m.parquet", y64)
    indexed = folder / "indexed.parquet"
    frame = pd.DataFrame(y32, index=pd.Index(FEATURES, name="feature"), columns=SAMPLES)
    frame.to_parquet(indexed, row_group_size=100)
    zarr_path = folder / "m.zarr"
    convert_matrix(parquet, zarr_path, row_group_rows=STORED_ROWS)
    return {
        "zarr_by_hand": (write_zarr(folder / "hand.zarr", y32), y32),
        "parquet": (parquet, y64),
        "parquet_index_float32": (indexed, y32),
        "zarr": (zarr_path, y64),
        "hdf5": (write_hdf5(folder / "m.h5", y32), y32),
        "h5ad": (write_h5ad(folder / "m.h5ad", y32), y32),
        "h5ad_csc": (write_h5ad(folder / "csc.h5ad", y64, "csc"), np.nan_to_num(y64)),
    }


FORMATS = ["parquet", "parquet_index_float32", "zarr", "zarr_by_hand", "hdf5", "h5ad",
           "h5ad_csc"]


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("rows", [97, STORED_ROWS, 300, 5000])
def test_blocks_cover_the_matrix_whatever_the_block_size(files, name: str, rows: int) -> None:
    path, expected = files[name]
    source = open_feature_blocks(path)
    assert isinstance(source, FeatureBlockSource)
    assert source.sample_ids == SAMPLES
    assert source.n_features == N_FEATURES
    assert source.dtype == expected.dtype
    blocks = list(source.blocks(rows))
    assert [b.start for b in blocks] == list(range(0, N_FEATURES, rows))
    assert all(b.values.flags.c_contiguous and b.values.dtype == expected.dtype for b in blocks)
    np.testing.assert_array_equal(np.concatenate([b.values for b in blocks]), expected)
    ids = np.concatenate([b.feature_ids for b in blocks])
    assert ids.dtype == object and list(ids) == FEATURES
    assert all(isinstance(i, str) for i in ids[:3])


@pytest.mark.parametrize("name", FORMATS)
def test_read_a_range_and_samples_in_any_order(files, name: str) -> None:
    path, expected = files[name]
    source = open_feature_blocks(path)
    block = source.read(250, 517, samples=["s4", "s0", "s2"])
    assert block.start == 250 and block.stop == 517
    np.testing.assert_array_equal(block.values, expected[250:517][:, [4, 0, 2]])
    assert list(block.feature_ids) == FEATURES[250:517]
    part = list(source.blocks(100, samples=["s5"], start=10, stop=260))
    assert [(b.start, b.stop) for b in part] == [(10, 110), (110, 210), (210, 260)]
    np.testing.assert_array_equal(np.concatenate([b.values for b in part]),
                                  expected[10:260, [5]])
    assert source.read(3, 3).values.shape == (0, N_SAMPLES)


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("rows", [97, STORED_ROWS, 300])
def test_blocks_in_either_order_hold_the_same_values(files, name: str, rows: int) -> None:
    """order="A": Parquet's sample columns side by side in Fortran order (no interleave),
    h5ad's transposed store as it is when a block is one stored block, Zarr and HDF5 (and
    pieces of stored arrays) as C; the values are the same."""
    path, expected = files[name]
    source = open_feature_blocks(path)
    blocks = list(source.blocks(rows, order="A"))
    np.testing.assert_array_equal(np.concatenate([b.values for b in blocks]), expected)
    assert all(b.values.flags.c_contiguous or b.values.flags.f_contiguous for b in blocks)
    if name.startswith("parquet"):
        assert all(b.values.flags.f_contiguous for b in blocks if len(b.values) > 1)
    elif name in ("zarr", "zarr_by_hand", "hdf5"):
        assert all(b.values.flags.c_contiguous for b in blocks)
    block = source.read(250, 517, samples=["s4", "s0", "s2"], order="A")
    np.testing.assert_array_equal(block.values, expected[250:517][:, [4, 0, 2]])
    assert list(block.feature_ids) == FEATURES[250:517]


def test_a_buffer_is_refilled_by_reads_by_column(files) -> None:
    """read(order="A", buffer=...) copies a row group's columns into the caller's buffer when
    it fits (shape, dtype, Fortran order), and allocates otherwise."""
    path, expected = files["parquet"]
    source = open_feature_blocks(path)
    buffer = np.empty((STORED_ROWS, N_SAMPLES), order="F")
    for start in (0, STORED_ROWS, 3 * STORED_ROWS + 5):
        block = source.read(start, start + STORED_ROWS, order="A", buffer=buffer)
        assert block.values is buffer
        np.testing.assert_array_equal(buffer, expected[start:start + STORED_ROWS])
    for unfit in (np.empty((STORED_ROWS, N_SAMPLES)), np.empty((STORED_ROWS - 1, N_SAMPLES),
                  order="F"), np.empty((STORED_ROWS, N_SAMPLES), np.float32, order="F")):
        block = source.read(0, STORED_ROWS, order="A", buffer=unfit)
        assert block.values is not unfit
        np.testing.assert_array_equal(block.values, expected[:STORED_ROWS])
    assert source.read(0, STORED_ROWS, buffer=buffer).values.flags.c_contiguous  # order C


def test_block_buffers_refill_one_block_per_thread(files) -> None:
    """BlockBuffers keeps the latest block copied by column as the thread's buffer and has the
    reader refill it; storage read without a copy is left alone."""
    from manylm.io.feature_blocks import BlockBuffers

    parquet, expected = files["parquet"]
    buffers = BlockBuffers()
    source = open_feature_blocks(parquet)
    first = buffers.read(source, 0, STORED_ROWS, None).values
    assert buffers.values is first
    again = buffers.read(source, STORED_ROWS, 2 * STORED_ROWS, None).values
    assert again is first
    np.testing.assert_array_equal(again, expected[STORED_ROWS:2 * STORED_ROWS])
    last = buffers.read(source, 7 * STORED_ROWS, N_FEATURES, None).values  # shorter
    assert last is not first and buffers.values is last  # the latest shape (another run's)
    np.testing.assert_array_equal(last, expected[7 * STORED_ROWS:])
    assert buffers.read(source, 7 * STORED_ROWS, N_FEATURES, None).values is last
    zarr_buffers = BlockBuffers()
    zarr_buffers.read(open_feature_blocks(files["zarr"][0]), 0, STORED_ROWS, None)
    assert zarr_buffers.values is None  # a stored array, handed over as it is


def test_read_order_is_checked(files) -> None:
    source = open_feature_blocks(files["parquet"][0])
    with pytest.raises(InputError, match="order must be one of 'C', 'A', not 'F'"):
        source.read(0, 5, order="F")
    with pytest.raises(InputError, match="order must be one of"):
        next(source.blocks(10, order="K"))


def test_a_source_without_the_order_argument_is_read_in_c_order(files) -> None:
    """Sources written against the contract before ``order`` existed still work."""
    from manylm.io.feature_blocks import read_either_order

    inner = open_feature_blocks(files["parquet"][0])

    class OldSource:
        path, sample_ids, n_features = inner.path, inner.sample_ids, inner.n_features
        dtype, natural_block_rows = inner.dtype, inner.natural_block_rows

        def read(self, start, stop, samples=None):
            return inner.read(start, stop, samples)

    block = read_either_order(OldSource(), 0, 300, None)  # type: ignore[arg-type]
    assert block.values.flags.c_contiguous

    class Proxy:  # forwards everything, read included, to the reader it wraps
        def __getattr__(self, name: str) -> object:
            return getattr(inner, name)

    proxied = read_either_order(Proxy(), 0, 300, None)  # type: ignore[arg-type]
    assert proxied.values.flags.f_contiguous
    assert read_either_order(inner, 0, 300, None).values.flags.f_contiguous
    np.testing.assert_array_equal(block.values, files["parquet"][1][:300])


@pytest.mark.parametrize("name", FORMATS)
def test_sources_pickle_cheaply_and_reopen(files, name: str) -> None:
    path, expected = files[name]
    source = open_feature_blocks(path)
    source.read(0, 10)  # opens the file and fills the cache: neither may be pickled
    payload = pickle.dumps(source)
    assert len(payload) < 2000
    clone = pickle.loads(payload)
    np.testing.assert_array_equal(clone.read(900, 1000).values, expected[900:1000])
    assert repr(clone).startswith(type(source).__name__)


def test_threads_read_one_source_concurrently(files) -> None:
    path, expected = files["parquet"]
    source = open_feature_blocks(path)
    results: dict[int, np.ndarray] = {}

    def work(k: int) -> None:
        results[k] = np.concatenate([b.values for b in source.blocks(70 + k)])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(3):
        np.testing.assert_array_equal(results[k], expected)


def test_parquet_reads_only_the_overlapping_row_groups(files, monkeypatch) -> None:
    path, _ = files["parquet"]
    source = open_feature_blocks(path)
    read: list[int] = []
    original = pq.ParquetFile.read_row_group

    def spy(self, i, *args, **kwargs):
        read.append(i)
        return original(self, i, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy)
    source.read(300, 400)
    assert read == [2, 3]
    read.clear()
    list(source.blocks(100))  # blocks straddle row groups: each is still decoded once
    assert read == list(range(8))


def test_parquet_with_integer_ids_and_columns(tmp_path: Path) -> None:
    table = pa.table({"entrez": [101, 102, 103], "a": [1, 2, 3], "b": [0.5, None, 2.0]})
    pq.write_table(table, tmp_path / "int.parquet")
    block = open_feature_blocks(tmp_path / "int.parquet").read(0, 3)
    assert list(block.feature_ids) == ["101", "102", "103"]
    assert block.values.dtype == np.float64
    np.testing.assert_array_equal(block.values, [[1, 0.5], [2, np.nan], [3, 2.0]])


def test_parquet_with_a_pandas_range_index_reads_its_numbers_as_ids(tmp_path: Path) -> None:
    """A RangeIndex (metadata only, no column) gives every block its rows' numbers, across
    row groups; every column is a sample."""
    values = make_values(np.float64)
    frame = pd.DataFrame(values, columns=SAMPLES, index=pd.RangeIndex(5, 5 + 3 * N_FEATURES, 3))
    frame.to_parquet(tmp_path / "r.parquet", row_group_size=STORED_ROWS)
    source = open_feature_blocks(tmp_path / "r.parquet")
    assert source.sample_ids == SAMPLES
    block = source.read(100, 300)
    assert list(block.feature_ids) == [str(5 + 3 * i) for i in range(100, 300)]
    np.testing.assert_array_equal(block.values, values[100:300])


def test_parquet_faults_found_at_open_or_read_are_errors_naming_them(tmp_path: Path) -> None:
    pq.write_table(pa.Table.from_arrays([pa.array(["a", "b"]), pa.array([1.0, 2.0])] * 2,
                                        names=["id", "S1", "id", "S2"]), tmp_path / "d.parquet")
    with pytest.raises(InputError, match="several columns named 'id'"):
        open_feature_blocks(tmp_path / "d.parquet")
    pq.write_table(pa.table({"id": ["a", "b"], "S1": pa.array([-(2**62), 0], pa.int64())}),
                   tmp_path / "big.parquet")
    with pytest.raises(DataError, match=r"'S1' holds -4611686018427387904 for feature 'a' "
                                        r"\(row 0; 1 such value"):
        open_feature_blocks(tmp_path / "big.parquet").read(0, 2)


def test_csr_anndata_is_read_but_warned_about(tmp_path: Path) -> None:
    values = np.nan_to_num(make_values(np.float32))
    path = write_h5ad(tmp_path / "csr.h5ad", values, "csr")
    with pytest.warns(ManylmWarning, match="CSR"):
        source = open_feature_blocks(path)
    np.testing.assert_array_equal(source.read(10, 20).values, values[10:20])


# ----------------------------------------------------------------------------- faults


def test_corrupt_parquet_row_group_is_named_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "c.parquet"
    convert_matrix(write_parquet(tmp_path / "m.parquet", make_values(np.float64)), path,
                   row_group_rows=STORED_ROWS)
    column = pq.ParquetFile(path).metadata.row_group(2).column(3)
    corrupt_bytes(path, column.data_page_offset + column.total_compressed_size - 16)
    source = open_feature_blocks(path)
    assert source.read(0, 256).values.shape == (256, N_SAMPLES)  # other row groups still read
    with pytest.raises(InputError, match=r"row group 2 \(rows 256-383\) cannot be read.*corrupt"):
        list(source.blocks(300))


@pytest.mark.parametrize("change", ["cut short", "replaced", "removed"])
def test_parquet_changed_during_a_run_is_an_error_not_a_crash(files, tmp_path: Path,
                                                              change: str) -> None:
    """Row groups are decoded from a memory map: a file truncated after it was opened would
    fault on the map, and a file replaced would give rows of two files; both are checked."""
    import os
    import shutil

    path = Path(shutil.copy(files["parquet"][0], tmp_path / "changed.parquet"))
    source = open_feature_blocks(path)
    assert source.read(0, 10).values.shape == (10, N_SAMPLES)
    if change == "removed":
        path.unlink()
        with pytest.raises(InputError, match=r"can no longer be read .*moved or removed while "
                                             r"it was read \(rows 128-255 not read\)"):
            source.read(130, 140)
        return
    if change == "cut short":
        with open(path, "r+b") as handle:
            handle.truncate(path.stat().st_size // 2)
    else:  # the same layout written again, then moved over the file being read
        other = Path(shutil.copy(path, tmp_path / "other.parquet"))
        stamp = path.stat().st_mtime
        os.utime(other, (stamp + 5, stamp + 5))
        other.replace(path)
    with pytest.raises(InputError, match=r"changed while it was read .*rows 128-255 not read"):
        source.read(130, 140)


def test_truncated_parquet_is_refused_at_open(files, tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    path.write_bytes(files["parquet"][0].read_bytes()[:-200])
    with pytest.raises(InputError, match="truncated"):
        open_feature_blocks(path)


def test_corrupt_or_missing_zarr_chunk_is_named_with_its_rows(files, tmp_path: Path) -> None:
    path = tmp_path / "c.zarr"
    convert_matrix(files["parquet"][0], path, row_group_rows=STORED_ROWS)
    corrupt_bytes(path / "values" / "c" / "3" / "0", 100)
    (path / "values" / "c" / "5" / "0").unlink()
    (path / "feature_ids" / "c" / "7").unlink()
    source = open_feature_blocks(path)
    np.testing.assert_array_equal(source.read(0, 384).values, files["parquet"][1][:384])
    with pytest.raises(InputError, match=r"chunk 3 \(rows 384-511\) cannot be read"):
        source.read(300, 500)
    with pytest.raises(InputError, match=r"chunk 5 of 'values' \(rows 640-767\) is missing"):
        source.read(700, 701)
    with pytest.raises(InputError, match=r"chunk 7 of 'feature_ids' \(rows 896-999\) is "):
        source.read(900, 1000)


def test_corrupt_hdf5_chunk_is_named_with_its_rows(tmp_path: Path) -> None:
    path = write_hdf5(tmp_path / "c.h5", make_values(np.float32), fletcher32=True)
    with h5py.File(path, "r") as f:
        offset = f["values"].id.get_chunk_info(4).byte_offset
    corrupt_bytes(path, offset + 8)
    source = open_feature_blocks(path)
    with pytest.raises(InputError, match=r"chunk 4 \(rows 512-639\) cannot be read"):
        list(source.blocks(1000))


def test_a_block_of_missing_values_only_is_read(tmp_path: Path) -> None:
    """Every value of a block NaN (missing) is not an infinite value: the block is read."""
    values = make_values(np.float64)
    values[100:300] = np.nan
    path = write_parquet(tmp_path / "nan.parquet", values)
    convert_matrix(path, tmp_path / "nan.zarr", row_group_rows=STORED_ROWS)
    for stored in (path, tmp_path / "nan.zarr"):
        block = open_feature_blocks(stored).read(100, 300)
        assert np.isnan(block.values).all()


def test_infinite_value_is_refused_naming_the_rows(tmp_path: Path) -> None:
    values = make_values(np.float64)
    values[517, 3] = -np.inf
    source = open_feature_blocks(write_parquet(tmp_path / "inf.parquet", values))
    source.read(0, 500)
    with pytest.raises(DataError, match=r"rows 500-999: feature 'g0517' \(row 517\), sample "
                                        r"'s3': value -inf is infinite"):
        list(source.blocks(500))
    with pytest.raises(DataError, match=r"feature 'g0517' \(row 517\), sample 's3'"):
        list(source.blocks(500, order="A"))


@pytest.mark.parametrize("layout", ["no_values", "wrong_ids"])
def test_zarr_and_hdf5_of_another_layout_are_refused(tmp_path: Path, layout: str) -> None:
    group = zarr.open_group(tmp_path / "x.zarr", mode="w")
    hdf5 = h5py.File(tmp_path / "x.h5", "w")
    group.create_array("feature_ids", shape=(3,), dtype=str)
    group.create_array("sample_ids", shape=(2,), dtype=str)
    hdf5.create_dataset("feature_ids", data=["a", "b", "c"], dtype=h5py.string_dtype())
    hdf5.create_dataset("sample_ids", data=["x", "y"], dtype=h5py.string_dtype())
    rows = 3 if layout == "no_values" else 4
    name = "X" if layout == "no_values" else "values"
    group.create_array(name, shape=(rows, 2), dtype="float32")
    hdf5.create_dataset(name, data=np.zeros((rows, 2)))
    hdf5.close()
    for path in (tmp_path / "x.zarr", tmp_path / "x.h5"):
        with pytest.raises(InputError, match=r"'values'.*expected .*feature_ids"):
            open_feature_blocks(path)


def test_anndata_without_x_is_one_error_read_whole_or_by_blocks(tmp_path: Path) -> None:
    anndata = pytest.importorskip("anndata")
    anndata.AnnData(obs=pd.DataFrame(index=SAMPLES),
                    var=pd.DataFrame(index=FEATURES)).write_h5ad(tmp_path / "no_x.h5ad")
    for read in (open_feature_blocks, read_matrix):
        with pytest.raises(InputError, match=r"no_x.h5ad: the AnnData file has no X matrix; "
                                             r"store the values in X"):
            read(tmp_path / "no_x.h5ad")


def test_zarr_ids_of_numbers_or_unreadable_metadata_are_refused(tmp_path: Path) -> None:
    """Feature IDs stored as numbers (HDF5 refuses them too), and a member whose metadata
    cannot be read, are one error each, naming the store and the member."""
    values = make_values(np.float32)
    group = zarr.open_group(tmp_path / "n.zarr", mode="w")
    group.create_array("values", data=values)
    group.create_array("feature_ids", data=np.arange(N_FEATURES))
    group.create_array("sample_ids", data=np.array(SAMPLES, dtype="T"))
    with pytest.raises(InputError, match=r"'feature_ids' has dtype int64; it must hold strings"):
        open_feature_blocks(tmp_path / "n.zarr")
    write_zarr(tmp_path / "m.zarr", values)
    (tmp_path / "m.zarr" / "values" / "zarr.json").write_text("{bad")
    with pytest.raises(InputError, match=r"m.zarr: cannot read the metadata of 'values' "
                                         r"\(.*\); the store is damaged"):
        open_feature_blocks(tmp_path / "m.zarr")


@pytest.mark.parametrize("name, message", [
    ("m.tsv.gz", "convert it once with 'manylm convert"),
    ("m.csv", "convert it once"),
    ("m.feather", "cannot tell the format"),
    ("missing.parquet", "not found"),
])
def test_unsupported_or_missing_paths(tmp_path: Path, name: str, message: str) -> None:
    if name != "missing.parquet":
        (tmp_path / name).write_text("x")
    with pytest.raises(InputError, match=message):
        open_feature_blocks(tmp_path / name)


def test_bad_requests(files) -> None:
    source = open_feature_blocks(files["parquet"][0])
    with pytest.raises(InputError, match="not in the file: 'nope'"):
        source.read(0, 5, samples=["s1", "nope"])
    with pytest.raises(InputError, match="outside the matrix"):
        source.read(990, 1001)
    with pytest.raises(InputError, match="rows must be a positive integer"):
        next(source.blocks(0))


# ----------------------------------------------------------------------------- convert


def write_text(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, sep="\t" if ".tsv" in path.name else ",", na_rep="NA",
                 float_format="%.17g", index_label="feature")
    return path


@pytest.mark.parametrize("out", ["m.parquet", "m.zarr"])
@pytest.mark.parametrize("text", ["m.tsv.gz", "m.csv"])
def test_convert_text_matches_read_matrix(tmp_path: Path, text: str, out: str) -> None:
    frame = pd.DataFrame(make_values(np.float64), index=FEATURES, columns=SAMPLES)
    source = write_text(tmp_path / text, frame)
    reports: list[tuple[int, int]] = []
    summary = convert_matrix(source, tmp_path / out, row_group_rows=300,
                             progress=lambda done, total: reports.append((done, total)))
    assert (summary.n_features, summary.n_samples, summary.dtype) == (1000, 6, "float64")
    assert reports and reports[-1][0] == reports[-1][1] == source.stat().st_size
    blocks = open_feature_blocks(tmp_path / out)
    assert blocks.natural_block_rows == 300
    expected = read_matrix(source)
    np.testing.assert_array_equal(blocks.read(0, 1000).values, expected.to_numpy())
    assert list(blocks.read(0, 1000).feature_ids) == list(expected.index)
    if out.endswith(".parquet"):
        pd.testing.assert_frame_equal(read_matrix(tmp_path / out), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([text, out])


def test_convert_to_float32_and_between_binary_formats(files, tmp_path: Path) -> None:
    convert_matrix(files["parquet"][0], tmp_path / "f.zarr", dtype="float32")
    convert_matrix(files["h5ad"][0], tmp_path / "a.parquet")
    as32 = open_feature_blocks(tmp_path / "f.zarr").read(0, 1000).values
    assert as32.dtype == np.float32
    np.testing.assert_array_equal(as32, files["parquet"][1].astype(np.float32))
    np.testing.assert_array_equal(open_feature_blocks(tmp_path / "a.parquet").read(0, 1000).values,
                                  files["h5ad"][1])


def test_convert_parses_text_straight_to_float32(tmp_path: Path) -> None:
    frame = pd.DataFrame(make_values(np.float64), index=FEATURES, columns=SAMPLES)
    source = write_text(tmp_path / "m.tsv", frame)
    convert_matrix(source, tmp_path / "m.parquet", dtype="float32")
    values = open_feature_blocks(tmp_path / "m.parquet").read(0, 1000).values
    assert values.dtype == np.float32
    np.testing.assert_array_max_ulp(values, frame.to_numpy().astype(np.float32), maxulp=1)


BAD_TEXT = {
    "not a number": ("id\ta\tb\ng1\t1\t2\ng2\t3\tfoo\n",
                     DataError, "data row 2, feature 'g2', sample 'b': 'foo' is not a number"),
    "ragged": ("id\ta\tb\ng1\t1\t2\ng2\t3\t4\t5\n", DataError, "line 3 (feature 'g2') has 4"),
    "infinite": ("id\ta\tb\ng1\t1\t2\ng2\t-inf\t4\n", DataError,
                 "data row 2, feature 'g2', sample 'a': value -inf is infinite"),
    "repeated id": ("id\ta\tb\ng1\t1\t2\ng2\t3\t4\ng1\t5\t6\n", DataError,
                    "'g1' on data rows 1, 3"),
    "blank id": ("id\ta\tb\ng1\t1\t2\n \t3\t4\n", DataError, "data row 2 has a blank feature ID"),
    "repeated sample": ("id\ta\ta\ng1\t1\t2\n", DataError, "sample ID(s) occur more than once"),
    "header only": ("id\ta\tb\n", InputError, "no feature rows"),
    "empty": ("", InputError, "the file is empty"),
}


@pytest.mark.parametrize("out", ["bad.parquet", "bad.zarr"])
@pytest.mark.parametrize("case", list(BAD_TEXT))
def test_convert_refuses_bad_text_and_leaves_nothing(tmp_path: Path, case: str, out: str) -> None:
    text, error, message = BAD_TEXT[case]
    (tmp_path / "bad.tsv").write_text(text)
    with pytest.raises(error) as caught:
        convert_matrix(tmp_path / "bad.tsv", tmp_path / out)
    assert message in str(caught.value)
    assert [p.name for p in tmp_path.iterdir()] == ["bad.tsv"]


def test_non_number_found_far_into_a_large_file(tmp_path: Path) -> None:
    rows = [f"g{i}\t{i}.25\t{i}" for i in range(300_000)]
    rows[250_001] = "gbad\t1\tx1"
    (tmp_path / "big.tsv").write_text("id\ta\tb\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match="data row 250,002, feature 'gbad', sample 'b': 'x1'"):
        convert_matrix(tmp_path / "big.tsv", tmp_path / "big.parquet")


@pytest.mark.parametrize("out", ["m.parquet", "m.zarr"])
@pytest.mark.parametrize("fault", ["no space", "interrupt"])
def test_full_disk_or_interrupt_leaves_no_partial_output(files, tmp_path: Path, monkeypatch,
                                                         out: str, fault: str) -> None:
    from manylm.io import parquet_blocks, zarr_blocks

    target = tmp_path / out
    convert_matrix(files["parquet"][0], target, row_group_rows=500)  # an older output to keep
    before = open_feature_blocks(target).read(0, 1000).values
    writer = (parquet_blocks.ParquetMatrixWriter if out.endswith(".parquet")
              else zarr_blocks.ZarrMatrixWriter)
    original = writer.write
    calls = []

    def failing(self, ids, values):
        calls.append(1)
        if len(calls) == 3:
            if fault == "interrupt":
                raise KeyboardInterrupt
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, ids, values)

    monkeypatch.setattr(writer, "write", failing)
    expected = KeyboardInterrupt if fault == "interrupt" else InputError
    with pytest.raises(expected) as caught:
        convert_matrix(files["hdf5"][0], target, row_group_rows=STORED_ROWS)
    if fault == "no space":
        assert "no space left on the device" in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [out]
    np.testing.assert_array_equal(open_feature_blocks(target).read(0, 1000).values, before)


def test_convert_replaces_a_zarr_store_but_no_other_directory(files, tmp_path: Path) -> None:
    convert_matrix(files["parquet"][0], tmp_path / "m.zarr")
    convert_matrix(files["hdf5"][0], tmp_path / "m.zarr")
    np.testing.assert_array_equal(open_feature_blocks(tmp_path / "m.zarr").read(0, 5).values,
                                  files["hdf5"][1][:5])
    (tmp_path / "other.zarr").mkdir()
    (tmp_path / "other.zarr" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not a Zarr store; it will not be replaced"):
        convert_matrix(files["parquet"][0], tmp_path / "other.zarr")
    assert (tmp_path / "other.zarr" / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("destination, message", [
    ("m.h5", "name it .parquet or .zarr"),
    ("nowhere/m.parquet", "does not exist; create it first"),
])
def test_convert_bad_destination(files, tmp_path: Path, destination: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        convert_matrix(files["parquet"][0], tmp_path / destination)


def test_feature_block_accepts_the_old_keyword() -> None:
    """``FeatureBlock(start, feature_ids=..., values=...)`` (block sources written for the
    earlier field name) still works; IDs given as Arrow text convert on first use."""
    import pyarrow as pa

    from manylm.io.feature_blocks import FeatureBlock

    values = np.zeros((2, 3))
    old = FeatureBlock(start=5, feature_ids=np.array(["a", "b"], dtype=object), values=values)
    arrow = FeatureBlock(5, pa.array(["a", "b"]), values)
    assert old.stop == arrow.stop == 7
    assert list(old.feature_ids) == list(arrow.feature_ids) == ["a", "b"]
    assert arrow.id_array.type == pa.large_string()
    with pytest.raises(TypeError):
        FeatureBlock(5, values=values)
