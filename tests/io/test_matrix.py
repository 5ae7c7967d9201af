"""Tests of manylm.io.read_matrix / read_weights."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from manylm.errors import DataError, InputError
from manylm.io import MATRIX_SUFFIXES, example_paths, read_matrix, read_weights


def write(path: Path, text: str, *, gz: bool = False) -> Path:
    data = text.encode("utf-8")
    if gz:
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


BASIC = "feature\tS1\tS2\tS3\n01005\t1.5\t2\t-3e-2\ng2\t4\t5\t6\n"


def test_truncated_gzip_text_is_one_error(tmp_path: Path) -> None:
    rows = "".join(f"g{i}\t{i}\t{i + 1}\t{i + 2}\n" for i in range(20000))
    whole = gzip.compress(("feature\tS1\tS2\tS3\n" + rows).encode())
    path = tmp_path / "m.tsv.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match=r"m.tsv.gz: cannot read the file \(.*\); it may be "
                                         r"truncated or not gzip-compressed text"):
        read_matrix(path)


def test_tsv_basic(tmp_path: Path) -> None:
    df = read_matrix(write(tmp_path / "m.tsv", BASIC))
    assert df.shape == (2, 3)
    assert df.index.name == "feature"
    assert list(df.index) == ["01005", "g2"]
    assert list(df.columns) == ["S1", "S2", "S3"]
    assert all(isinstance(i, str) for i in df.index)
    assert all(isinstance(c, str) for c in df.columns)
    assert (df.dtypes == np.float64).all()
    assert df.loc["01005", "S3"] == -0.03
    assert df.loc["g2"].tolist() == [4.0, 5.0, 6.0]


def test_numeric_looking_ids_stay_strings(tmp_path: Path) -> None:
    text = "id\t001\t2.0\t1e3\n01005\t1\t2\t3\n1e5\t4\t5\t6\n007\t7\t8\t9\n"
    df = read_matrix(write(tmp_path / "m.tsv", text))
    assert list(df.index) == ["01005", "1e5", "007"]
    assert list(df.columns) == ["001", "2.0", "1e3"]


@pytest.mark.parametrize("suffix", [".tsv", ".txt", ".tab", ".tsv.gz", ".txt.gz", ".TSV"])
def test_tab_suffixes(tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path / f"m{suffix}", BASIC, gz=suffix.endswith(".gz"))
    df = read_matrix(path)
    assert df.shape == (2, 3)
    assert list(df.index) == ["01005", "g2"]


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_csv(tmp_path: Path, suffix: str) -> None:
    text = BASIC.replace("\t", ",")
    df = read_matrix(write(tmp_path / f"m{suffix}", text, gz=suffix.endswith(".gz")))
    assert df.shape == (2, 3)
    assert list(df.index) == ["01005", "g2"]
    assert df.loc["g2", "S3"] == 6.0


def test_quoted_csv(tmp_path: Path) -> None:
    text = '"feature","S 1","S,2"\n"g,1",1,2\n"g2",3,NA\n'
    df = read_matrix(write(tmp_path / "m.csv", text))
    assert list(df.index) == ["g,1", "g2"]
    assert list(df.columns) == ["S 1", "S,2"]
    assert math.isnan(df.loc["g2", "S,2"])


def test_missing_values(tmp_path: Path) -> None:
    text = "feature\tA\tB\tC\tD\ng1\t\tNA\tNaN\tnan\ng2\t1\t2\t3\t4\n"
    df = read_matrix(write(tmp_path / "m.tsv", text))
    assert df.loc["g1"].isna().all()
    assert df.loc["g2"].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_na_feature_id_is_an_id(tmp_path: Path) -> None:
    df = read_matrix(write(tmp_path / "m.tsv", "feature\tA\nNA\t1\nnan\t2\n"))
    assert list(df.index) == ["NA", "nan"]


def test_r_style_header_without_id_field(tmp_path: Path) -> None:
    df = read_matrix(write(tmp_path / "m.tsv", "S1\tS2\ng1\t1\t2\ng2\t3\t4\n"))
    assert list(df.columns) == ["S1", "S2"]
    assert list(df.index) == ["g1", "g2"]


def test_crlf_and_bom(tmp_path: Path) -> None:
    text = "\ufefffeature\tS1\tS2\r\ng1\t1\t2\r\ng2\t3\t4\r\n"
    df = read_matrix(write(tmp_path / "m.tsv", text))
    assert list(df.columns) == ["S1", "S2"]
    assert df.loc["g2", "S2"] == 4.0


def test_full_precision(tmp_path: Path) -> None:
    df = read_matrix(write(tmp_path / "m.tsv", "f\tA\ng\t0.1234567890123456789\n"))
    assert df.iloc[0, 0] == 0.1234567890123456789


def test_read_weights(tmp_path: Path) -> None:
    """NA is read (the fit refuses it where it uses the weight, naming the file: a cell it
    does not use, of an extra sample or feature, may be NA)."""
    df = read_weights(write(tmp_path / "w.tsv", "feature\tA\tB\ng1\t0.5\t1\ng2\tNA\t0\n"))
    assert df.loc["g1", "A"] == 0.5
    assert math.isnan(df.loc["g2", "A"])


# ------------------------------------------------------------------------------------------
# errors


def test_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.tsv.*not found"):
        read_matrix(tmp_path / "nope.tsv")


def test_directory(tmp_path: Path) -> None:
    d = tmp_path / "dir.tsv"
    d.mkdir()
    with pytest.raises(InputError, match=r"is a directory, not an expression file.*\.zarr"):
        read_matrix(d)
    with pytest.raises(InputError, match="is a directory, not a weights file"):
        read_weights(d)


def test_a_pipe_or_device_is_not_called_a_directory(tmp_path: Path) -> None:
    from manylm.io import read_sample_sheet

    for read in (read_matrix, read_sample_sheet):
        with pytest.raises(InputError, match=r"/dev/null: is not a regular file \(a pipe, a "
                                             r"device or a socket\).*save it to a file"):
            read("/dev/null")


def test_unknown_suffix(tmp_path: Path) -> None:
    path = write(tmp_path / "m.xlsx", BASIC)
    with pytest.raises(InputError, match=r"m\.xlsx.*'\.xlsx'") as info:
        read_matrix(path)
    for suffix in MATRIX_SUFFIXES:
        assert suffix in str(info.value)


def test_no_suffix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no suffix"):
        read_matrix(write(tmp_path / "matrix", BASIC))


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"m\.tsv: the file is empty"):
        read_matrix(write(tmp_path / "m.tsv", ""))


def test_empty_gz_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty"):
        read_matrix(write(tmp_path / "m.tsv.gz", "", gz=True))


def test_no_samples(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no sample columns"):
        read_matrix(write(tmp_path / "m.tsv", "feature\ng1\ng2\n"))


def test_no_samples_wrong_delimiter_hint(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no sample columns.*comma-separated.*\.csv"):
        read_matrix(write(tmp_path / "m.tsv", "feature,S1,S2\ng1,1,2\n"))
    with pytest.raises(InputError, match=r"no sample columns.*tab-separated.*\.tsv"):
        read_matrix(write(tmp_path / "m.csv", "feature\tS1\tS2\ng1\t1\t2\n"))
    from manylm.io.convert import convert_matrix

    for read in (read_matrix, lambda path: convert_matrix(path, tmp_path / "m.parquet")):
        with pytest.raises(InputError, match=r"single field.*semicolon-separated, which manylm "
                                             r"does not read"):
            read(write(tmp_path / "s.csv", "feature;S1;S2\ng1;1.5;2\n"))


def test_header_only(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no feature rows"):
        read_matrix(write(tmp_path / "m.tsv", "feature\tS1\tS2\n"))


def test_not_gzip(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="gzip"):
        read_matrix(write(tmp_path / "m.tsv.gz", BASIC))


def test_duplicate_feature_ids(tmp_path: Path) -> None:
    rows = "".join(f"g{i % 7}\t{i}\n" for i in range(20))
    with pytest.raises(DataError, match=r"m\.tsv: 7 feature ID\(s\) occur more than once") as info:
        read_matrix(write(tmp_path / "m.tsv", "feature\tS1\n" + rows))
    msg = str(info.value)
    assert "'g0', 'g1', 'g2', 'g3', 'g4' and 2 more (7 in all)" in msg
    assert "'g5'" not in msg


def test_duplicate_sample_ids(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"m\.tsv: 1 sample ID\(s\) occur more than once.*'S1'"):
        read_matrix(write(tmp_path / "m.tsv", "feature\tS1\tS2\tS1\ng1\t1\t2\t3\n"))


def test_blank_sample_id(tmp_path: Path) -> None:
    # a trailing tab on every line makes an unnamed empty column
    with pytest.raises(DataError, match=r"blank sample ID.*column 3"):
        read_matrix(write(tmp_path / "m.tsv", "feature\tS1\t\ng1\t1\t\n"))


def test_blank_feature_id(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"blank feature ID \(data rows 2\)"):
        read_matrix(write(tmp_path / "m.tsv", "feature\tS1\ng1\t1\n\t2\n"))


def test_non_numeric_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = "feature\tS1\tS2\tS3\n" + "".join(f"g{i}\t1\t2\t3\n" for i in range(20))
    text += "g20\t1\t2\tabc\ng21\toops\t2\t3\n"
    with pytest.raises(DataError) as info:
        read_matrix(write(Path("expression.tsv"), text))
    msg = str(info.value)
    assert msg.startswith("expression.tsv: feature 'g20', sample 'S3': 'abc' is not a number")
    assert "NA" in msg  # says how to write a missing value


def test_non_numeric_cell_gz_csv(tmp_path: Path) -> None:
    text = "feature,S1,S2\ng1,1,2\ng2,1.2.3,4\n"
    with pytest.raises(DataError, match=r"feature 'g2', sample 'S1': '1\.2\.3' is not a number"):
        read_matrix(write(tmp_path / "m.csv.gz", text, gz=True))


def test_annotation_column_hint(tmp_path: Path) -> None:
    text = "feature\tsymbol\tS1\ng1\tTP53\t1\ng2\tBRCA1\t2\n"
    with pytest.raises(DataError, match=r"'TP53' is not a number.*'symbol' does not look numeric"):
        read_matrix(write(tmp_path / "m.tsv", text))


def test_ragged_row(tmp_path: Path) -> None:
    text = "feature\tS1\tS2\ng1\t1\t2\ng2\t1\t2\t3\n"
    with pytest.raises(DataError, match=r"line 3 \(feature 'g2'\) has 4 fields"):
        read_matrix(write(tmp_path / "m.tsv", text))


@pytest.mark.parametrize("value", ["Inf", "-inf", "1e400"])
def test_infinite_value(tmp_path: Path, value: str) -> None:
    text = f"feature\tS1\tS2\ng1\t1\t2\ng2\t3\t{value}\n"
    with pytest.raises(DataError, match=r"m\.tsv: feature 'g2', sample 'S2': .*infinite"):
        read_matrix(write(tmp_path / "m.tsv", text))


def test_negative_weight(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"w\.tsv: feature 'g2', sample 'B': weight -1.0"):
        read_weights(write(tmp_path / "w.tsv", "feature\tA\tB\ng1\t1\t1\ng2\t1\t-1\n"))


def test_negative_expression_is_fine(tmp_path: Path) -> None:
    df = read_matrix(write(tmp_path / "m.tsv", "feature\tA\ng1\t-1\n"))
    assert df.iloc[0, 0] == -1.0


def test_bad_dtype(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="dtype"):
        read_matrix(write(tmp_path / "m.tsv", BASIC), dtype=np.int64)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "m.tsv"
    path.write_bytes(b"feature\tS1\ng\xe91\t1\n")
    with pytest.raises(InputError, match="UTF-8"):
        read_matrix(path)


# ------------------------------------------------------------------------------------------
# parquet


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        rng.normal(size=(5, 3)),
        index=pd.Index(["01005", "g2", "g3", "g4", "g5"], name="feature"),
        columns=["001", "S2", "S3"],
    )


def test_parquet_first_column_ids(tmp_path: Path) -> None:
    df = frame()
    path = tmp_path / "m.parquet"
    df.reset_index().to_parquet(path, index=False)
    got = read_matrix(path)
    pd.testing.assert_frame_equal(got, df)


def test_parquet_pandas_index(tmp_path: Path) -> None:
    df = frame()
    path = tmp_path / "m.parquet"
    df.to_parquet(path)  # index stored as a column with pandas metadata
    pd.testing.assert_frame_equal(read_matrix(path), df)


def test_parquet_float32(tmp_path: Path) -> None:
    df = frame().astype(np.float32)
    path = tmp_path / "m.parquet"
    df.reset_index().to_parquet(path, index=False)
    assert (read_matrix(path).dtypes == np.float64).all()
    kept = read_matrix(path, dtype=None)
    assert (kept.dtypes == np.float32).all()
    pd.testing.assert_frame_equal(kept, df)


@pytest.mark.parametrize("layout", ["first column", "pandas index", "float32", "ints, nulls",
                                    "integer IDs", "row groups", "RangeIndex"])
@pytest.mark.parametrize("dtype", [np.float64, None])
def test_parquet_of_numbers_reads_as_the_general_reader_does(tmp_path: Path, monkeypatch,
                                                             layout: str, dtype) -> None:
    """A Parquet matrix of numbers is read by the block reader (faster, leaner); the frame is
    the one the general reader (pyarrow's whole table, converted) gives."""
    from manylm.io import _binary_matrix

    rng = np.random.default_rng(3)
    values = rng.normal(size=(700, 4))
    values[rng.random(values.shape) < 0.05] = np.nan
    df = pd.DataFrame(values, columns=["S1", "S2", "S3", "S4"],
                      index=pd.Index([f"g{i}" for i in range(700)], name="feature"))
    path = tmp_path / "m.parquet"
    if layout == "pandas index":
        df.to_parquet(path)
    elif layout == "RangeIndex":
        df.reset_index(drop=True).to_parquet(path)
    elif layout == "float32":
        df.astype(np.float32).reset_index().to_parquet(path, index=False)
    elif layout == "ints, nulls":
        table = pa.Table.from_pandas(df.reset_index(), preserve_index=False)
        ints = pa.array(np.where(np.isnan(values[:, 0]), None, np.round(values[:, 0] * 10)),
                        pa.int64())
        pq.write_table(table.set_column(1, "S1", ints), path)
    elif layout == "integer IDs":
        df.set_axis(pd.Index(range(700), name="feature")).reset_index().to_parquet(
            path, index=False)
    else:
        pq.write_table(pa.Table.from_pandas(df.reset_index(), preserve_index=False), path,
                       row_group_size=128 if layout == "row groups" else None)
    ours = read_matrix(path, dtype=dtype)
    monkeypatch.setattr(_binary_matrix, "_read_parquet_numbers", lambda p, target: None)
    theirs = read_matrix(path, dtype=dtype)
    pd.testing.assert_frame_equal(ours, theirs)


def test_parquet_pandas_range_index_gives_the_ids_pandas_reads_back(tmp_path: Path) -> None:
    """``DataFrame.to_parquet`` stores a RangeIndex in the metadata only, no column: when the
    first column holds sample values, the IDs are its numbers (as text), as
    ``pandas.read_parquet`` restores them; a first column of text is still the IDs
    (``df.reset_index().to_parquet()`` stores a RangeIndex too)."""
    df = frame().set_axis(pd.RangeIndex(10, 20, 2))
    path = tmp_path / "m.parquet"
    df.to_parquet(path)
    got = read_matrix(path)
    assert list(got.index) == ["10", "12", "14", "16", "18"]
    assert list(got.columns) == ["001", "S2", "S3"]
    np.testing.assert_array_equal(got.to_numpy(), df.to_numpy())
    df.reset_index(names="feature").to_parquet(path)  # a RangeIndex, and the IDs in a column
    assert list(read_matrix(path).index) == ["10", "12", "14", "16", "18"]
    frame().reset_index().to_parquet(path)
    pd.testing.assert_frame_equal(read_matrix(path), frame())
    moved = frame().reset_index()  # the IDs in the last column: not read as a sample
    moved[[*frame().columns, "feature"]].to_parquet(path)
    with pytest.raises(DataError, match=r"the feature ID column '001' has type double; it "
                                        r"must hold strings"):
        read_matrix(path)


@pytest.mark.parametrize("general", [False, True])
def test_parquet_integer_too_large_for_a_double_is_named(tmp_path: Path, monkeypatch,
                                                          general: bool) -> None:
    from manylm.io import _binary_matrix

    if general:
        monkeypatch.setattr(_binary_matrix, "_read_parquet_numbers", lambda p, target: None)
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"feature": ["a", "b", "c"], "S1": [1.0, 2.0, 3.0],
                             "S2": pa.array([1, 2**64 - 1, 3], pa.uint64())}), path)
    with pytest.raises(DataError, match=r"sample column 'S2' holds 18446744073709551615 for "
                                        r"feature 'b' \(row 1; .*beyond 2\^53.*null or NaN"):
        read_matrix(path)
    pq.write_table(pa.table({"feature": ["a", "b", "c"], "S1": [1.0, 2.0, 3.0],
                             "S2": pa.array([None, 2**60 + 1, 3], pa.int64())}), path)
    with pytest.raises(DataError, match=r"holds 1152921504606846977 for feature 'b'"):
        read_matrix(path)  # as stored, though the column holds a null


def test_parquet_columns_of_one_name_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(["a", "b"]), pa.array([1.0, 2.0]),
                                         pa.array([3.0, 4.0])], names=["id", "id", "S1"]), path)
    with pytest.raises(InputError, match=r"several columns named 'id'.*rename"):
        read_matrix(path)


def test_parquet_nulls_and_ints(tmp_path: Path) -> None:
    table = pa.table(
        {
            "feature": ["a", "b"],
            "S1": pa.array([1, None], pa.int64()),
            "S2": pa.array([1.5, None], pa.float64()),
        }
    )
    path = tmp_path / "m.parquet"
    pq.write_table(table, path)
    df = read_matrix(path)
    assert df.loc["a"].tolist() == [1.0, 1.5]
    assert df.loc["b"].isna().all()


def test_parquet_integer_ids(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"entrez": [7157, 672], "S1": [1.0, 2.0]}), path)
    assert list(read_matrix(path).index) == ["7157", "672"]


def test_parquet_string_values(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"feature": ["a", "b"], "S1": ["1.5", "NA"], "S2": ["2", "x"]}), path)
    with pytest.raises(DataError, match=r"feature 'b', sample 'S2': 'x' is not a number"):
        read_matrix(path)


def test_parquet_bad_column_type(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"feature": ["a"], "S1": pa.array([[1.0]])}), path)
    with pytest.raises(DataError, match="sample column 'S1' has type"):
        read_matrix(path)


def test_parquet_duplicate_features_and_inf(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"feature": ["a", "a"], "S1": [1.0, 2.0]}), path)
    with pytest.raises(DataError, match="'a'"):
        read_matrix(path)
    pq.write_table(pa.table({"feature": ["a", "b"], "S1": [1.0, -np.inf]}), path)
    with pytest.raises(DataError, match=r"feature 'b', sample 'S1'.*infinite"):
        read_matrix(path)


def test_not_parquet(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="Parquet"):
        read_matrix(write(tmp_path / "m.parquet", BASIC))


# ------------------------------------------------------------------------------------------
# h5ad


def test_h5ad_dense_and_sparse(tmp_path: Path) -> None:
    anndata = pytest.importorskip("anndata")
    sparse = pytest.importorskip("scipy.sparse")
    df = frame()
    for k, x in enumerate([df.T.to_numpy(), sparse.csr_matrix(df.T.to_numpy())]):
        adata = anndata.AnnData(
            X=x,
            obs=pd.DataFrame(index=list(df.columns)),
            var=pd.DataFrame(index=list(df.index)),
        )
        path = tmp_path / f"m{k}.h5ad"
        adata.write_h5ad(path)
        got = read_matrix(path)
        pd.testing.assert_frame_equal(got, df)


def test_h5ad_float32(tmp_path: Path) -> None:
    anndata = pytest.importorskip("anndata")
    df = frame().astype(np.float32)
    adata = anndata.AnnData(
        X=df.T.to_numpy(),
        obs=pd.DataFrame(index=list(df.columns)),
        var=pd.DataFrame(index=list(df.index)),
    )
    path = tmp_path / "m.h5ad"
    adata.write_h5ad(path)
    assert (read_matrix(path, dtype=None).dtypes == np.float32).all()
    assert (read_matrix(path).dtypes == np.float64).all()


def test_h5ad_without_anndata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "anndata", None)  # makes `import anndata` fail
    path = write(tmp_path / "m.h5ad", "not really")
    with pytest.raises(InputError, match=r"m\.h5ad: .*needs the optional package anndata"):
        read_matrix(path)


# ------------------------------------------------------------------------------------------
# bundled example


def test_example_files_load() -> None:
    expression, samples = example_paths()
    assert expression.is_file() and samples.is_file()
    df = read_matrix(expression)
    assert df.shape == (22283, 57)
    assert (df.dtypes == np.float64).all()
    assert df.index.name == "feature"
    assert df.index[0] == "1007_s_at"
    assert np.isfinite(df.to_numpy()).all()


def test_short_row(tmp_path: Path) -> None:
    text = "feature\tS1\tS2\ng1\t1\t2\ng2\t1\n"
    with pytest.raises(DataError, match=r"line 3 \(feature 'g2'\) has 2 fields but the header"):
        read_matrix(write(tmp_path / "m.tsv", text))


def test_quoted_na_is_missing(tmp_path: Path) -> None:
    df = read_matrix(write(tmp_path / "m.csv", 'feature,S1\n"g1","NA"\n"g2",""\n'))
    assert df["S1"].isna().all()


def test_large_matrix_ids_and_values(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=(3000, 4))
    ids = [f"{i:07d}" for i in range(3000)]
    path = tmp_path / "m.tsv"
    pd.DataFrame(values, index=pd.Index(ids, name="feature"), columns=list("ABCD")).to_csv(
        path, sep="\t"
    )
    df = read_matrix(path)
    assert list(df.index) == ids
    np.testing.assert_array_equal(df.to_numpy(), values)


# ----------------------------------------------------------------------------------------------
# Zarr and HDF5 (read whole through their block readers), and Parquet checksums


def test_zarr_hdf5_and_h5ad_read_whole_like_parquet(tmp_path: Path) -> None:
    """A matrix small enough for memory is read whole whatever its block format: the same
    frame as from Parquet (the in-memory path of ``manylm fit``, sva and combat)."""
    from matrix_files import write_block_formats

    rng = np.random.default_rng(3)
    values = rng.normal(6, 1, (300, 5))
    values[rng.random(values.shape) < 0.05] = np.nan
    frame = pd.DataFrame(values, columns=[f"s{j}" for j in range(5)])
    frame.insert(0, "feature", [f"g{i:03d}" for i in range(300)])
    frame.to_parquet(tmp_path / "m.parquet", index=False)
    expected = read_matrix(tmp_path / "m.parquet")
    for suffix, path in write_block_formats(frame, tmp_path, "m", chunk_rows=64).items():
        got = read_matrix(path)
        pd.testing.assert_frame_equal(got, expected, check_exact=True, obj=suffix)
        assert read_matrix(path, dtype=np.float32).dtypes.unique().tolist() == [np.float32]
    assert read_matrix(f"{tmp_path / 'm.zarr'}/").shape == (300, 5)  # a trailing slash


def test_zarr_store_that_is_missing_or_a_file(tmp_path: Path) -> None:
    pytest.importorskip("zarr")
    with pytest.raises(InputError, match=r"nope\.zarr: not found"):
        read_matrix(tmp_path / "nope.zarr")
    with pytest.raises(InputError, match=r"a \.zarr store is a directory, but this is a file"):
        read_matrix(write(tmp_path / "file.zarr", "x"))


def test_corrupt_parquet_page_is_an_error_naming_its_row_group(tmp_path: Path) -> None:
    """Pages written with checksums (manylm convert) are verified when the file is read whole,
    as when it is streamed: inverted bytes are an error naming the row group and its rows, not
    numbers (read without verification, the file gives a wrong value and no error)."""
    from manylm.io.convert import convert_matrix
    from matrix_files import corrupt_bytes

    values = np.random.default_rng(4).normal(8, 1, (500, 4))
    frame = pd.DataFrame(values, columns=["a", "b", "c", "d"])
    frame.insert(0, "feature", [f"g{i}" for i in range(500)])
    frame.to_parquet(tmp_path / "m.parquet", index=False)
    path = tmp_path / "corrupt.parquet"
    convert_matrix(tmp_path / "m.parquet", path, row_group_rows=100)
    column = pq.ParquetFile(path).metadata.row_group(2).column(3)
    corrupt_bytes(path, column.data_page_offset + column.total_compressed_size - 16)
    unchecked = pq.read_table(path).column("c").to_numpy()
    assert not np.array_equal(unchecked, values[:, 2])  # silently wrong without checksums
    with pytest.raises(InputError, match=r"corrupt\.parquet: row group 2 \(rows 200-299\) "
                                         r"cannot be read \(.*checksum.*\); the file is corrupt"):
        read_matrix(path)


def test_unreadable_parquet_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.parquet", "not parquet at all")
    with pytest.raises(InputError, match=r"bad\.parquet: cannot read the file as Parquet") as info:
        read_matrix(path)
    assert "\n" not in str(info.value)
