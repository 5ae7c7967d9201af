"""Tests of manylm.io.write_table and check_table_path."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from manylm.errors import InputError
from manylm.io import TABLE_SUFFIXES, check_table_path, read_matrix, write_table


def results() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 50
    x = rng.normal(size=n) * 10.0 ** rng.integers(-30, 30, n)
    return pd.DataFrame(
        {
            "feature": [f"{i:05d}" for i in range(n)],
            "logFC": x,
            "P.Value": rng.uniform(size=n) ** 8,
            "n": np.arange(n, dtype=np.int64),
        }
    )


def read_back(path: Path, sep: str) -> pd.DataFrame:
    return pd.read_csv(
        path,
        sep=sep,
        dtype={"feature": str},
        keep_default_na=False,
        na_values=["NA"],
        float_precision="round_trip",
    )


@pytest.mark.parametrize(
    ("name", "sep"), [("r.tsv", "\t"), ("r.txt", "\t"), ("r.csv", ","), ("r.tsv.gz", "\t")]
)
def test_text_round_trip_exact(tmp_path: Path, name: str, sep: str) -> None:
    df = results()
    df.loc[3, "logFC"] = np.nan
    path = tmp_path / name
    write_table(df, path)
    if name.endswith(".gz"):
        assert gzip.decompress(path.read_bytes()).startswith(b"feature\t")
    back = read_back(path, sep)
    pd.testing.assert_frame_equal(back, df, check_exact=True)  # bit-exact, string IDs kept
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_gz_is_reproducible(tmp_path: Path) -> None:
    a, b = tmp_path / "a.tsv.gz", tmp_path / "b.tsv.gz"
    write_table(results(), a)
    write_table(results(), b)
    assert a.read_bytes() == b.read_bytes()


def test_pandas_fallback_round_trip_exact(tmp_path: Path) -> None:
    df = results()
    df["flag"] = df["n"] % 2 == 0  # booleans go through pandas' writer
    path = tmp_path / "r.csv"
    write_table(df, path)
    back = read_back(path, ",")
    pd.testing.assert_frame_equal(back, df, check_exact=True)


def test_na_written_as_na(tmp_path: Path) -> None:
    df = pd.DataFrame({"id": ["a", None], "x": [np.nan, 1.5], "k": pd.array([1, None], "Int64")})
    path = tmp_path / "r.tsv"
    write_table(df, path)
    assert path.read_text() == "id\tx\tk\na\tNA\t1\nNA\t1.5\tNA\n"


def test_no_quotes_unless_needed(tmp_path: Path) -> None:
    path = tmp_path / "r.tsv"
    write_table(pd.DataFrame({"id": ["a b", "c,d"], "x": [1.0, 2.0]}), path)
    assert path.read_text() == "id\tx\na b\t1\nc,d\t2\n"
    write_table(pd.DataFrame({"id": ["a\tb", 'q"'], "x": [1.0, 2.0]}), path)
    back = pd.read_csv(path, sep="\t")
    assert back["id"].tolist() == ["a\tb", 'q"']


def test_mixed_object_column_falls_back(tmp_path: Path) -> None:
    df = pd.DataFrame({"id": ["a", 1, None], "flag": [True, False, True], "x": [0.1, 0.2, 0.3]})
    path = tmp_path / "r.tsv"
    write_table(df, path)
    assert path.read_text() == "id\tflag\tx\na\tTrue\t0.1\n1\tFalse\t0.2\nNA\tTrue\t0.3\n"


def test_index_written(tmp_path: Path) -> None:
    df = results().set_index("feature")
    path = tmp_path / "r.tsv"
    write_table(df, path, index=True)
    back = read_matrix(path)
    np.testing.assert_array_equal(back.to_numpy(), df.to_numpy(dtype=float))
    assert list(back.index) == list(df.index)


def test_parquet_round_trip(tmp_path: Path) -> None:
    df = results()
    path = tmp_path / "r.parquet"
    write_table(df, path)
    pd.testing.assert_frame_equal(pd.read_parquet(path), df)
    write_table(df.set_index("feature"), path, index=True)
    pd.testing.assert_frame_equal(pd.read_parquet(path), df)


def test_parquet_dictionary_only_for_repeated_text(tmp_path: Path) -> None:
    """Feature IDs and numbers are written plain (a dictionary of distinct values only costs);
    other text columns (labels that repeat) keep a dictionary."""
    import pyarrow.parquet as pq

    df = results().assign(direction=lambda d: np.where(d["logFC"] > 0, "up", "down"))
    path = tmp_path / "r.parquet"
    write_table(df, path)
    pd.testing.assert_frame_equal(pd.read_parquet(path), df)
    group = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {group.column(k).path_in_schema: group.column(k).encodings
                 for k in range(group.num_columns)}
    assert not any("DICTIONARY" in e for e in encodings["feature"])
    assert not any("DICTIONARY" in e for e in encodings["logFC"])
    assert any("DICTIONARY" in e for e in encodings["direction"])


def test_parquet_statistics_only_for_p_values(tmp_path: Path) -> None:
    """Row groups carry minimum and maximum for the p-value columns (a table sorted by p can
    be filtered on them a row group at a time), not for the unordered others."""
    import pyarrow.parquet as pq

    df = results().rename(columns={"P.Value": "p_value"})
    df["adj_p_value"] = np.minimum(1.0, df["p_value"] * len(df))
    path = tmp_path / "r.parquet"
    write_table(df, path)
    pd.testing.assert_frame_equal(pd.read_parquet(path), df)
    group = pq.ParquetFile(path).metadata.row_group(0)
    with_statistics = {group.column(k).path_in_schema for k in range(group.num_columns)
                       if group.column(k).is_stats_set}
    assert with_statistics == {"p_value", "adj_p_value"}
    assert group.column(list(df.columns).index("p_value")).statistics.min == df["p_value"].min()


def test_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    df = pd.DataFrame({"feature": ["01005", "g2"], "t": [1.25, np.nan]})
    print("before")
    write_table(df, None)
    write_table(df, "-")
    out = capsys.readouterr().out
    body = "feature\tt\n01005\t1.25\ng2\tNA\n"
    assert out == "before\n" + body + body


def test_stdout_text_only_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stdout", stream)
    write_table(pd.DataFrame({"a": [1.5]}), None)
    assert stream.getvalue() == "a\n1.5\n"


def test_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"r\.xlsx.*supported suffixes") as info:
        check_table_path(tmp_path / "r.xlsx")
    for suffix in TABLE_SUFFIXES:
        assert suffix in str(info.value)
    with pytest.raises(InputError, match="supported suffixes"):
        write_table(results(), tmp_path / "r.json")
    assert list(tmp_path.iterdir()) == []


def test_check_table_path(tmp_path: Path) -> None:
    assert check_table_path(tmp_path / "a.csv.gz").delimiter == ","
    assert check_table_path(tmp_path / "a.csv.gz").gzip
    assert check_table_path(tmp_path / "a.parquet").name == "parquet"
    assert check_table_path(None).name == "tsv"
    assert check_table_path("-").delimiter == "\t"
    with pytest.raises(InputError, match="does not exist"):
        check_table_path(tmp_path / "missing" / "a.tsv")
    (tmp_path / "d.tsv").mkdir()
    with pytest.raises(InputError, match="is a directory"):
        check_table_path(tmp_path / "d.tsv")
    (tmp_path / "d").mkdir()  # no suffix: still named a directory, not a name to change
    with pytest.raises(InputError, match="d: is a directory; give a file name"):
        check_table_path(tmp_path / "d")
    (tmp_path / "f.tsv").write_text("")
    with pytest.raises(InputError, match=r"f.tsv' is a file, not a directory"):
        check_table_path(tmp_path / "f.tsv" / "a.tsv")


def test_replaces_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "r.tsv"
    path.write_text("old\n")
    write_table(pd.DataFrame({"a": [1]}), path)
    assert path.read_text() == "a\n1\n"
