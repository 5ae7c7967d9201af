"""Compiled delimited rows give the bytes of Arrow's CSV writer (unquoted, NA for missing)."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from manylm.io import delimited_rows
from manylm.io.delimited_rows import format_rows


def _arrow_text(table: pa.Table, delimiter: str) -> bytes:
    out = io.BytesIO()
    pacsv.write_csv(table, out, pacsv.WriteOptions(
        delimiter=delimiter, null_string="NA", quoting_style="none", include_header=False))
    return out.getvalue()


def _table(n: int, seed: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((n, 3)) * 10.0 ** rng.integers(-12, 12, (n, 3))
    values[rng.random((n, 3)) < 0.05] = np.nan
    values[::17, 1] = np.inf
    return pa.table({
        "feature": pa.array([f"cg{i:07d}-é" for i in range(n)], type=pa.large_string()),
        "estimate": pa.array(values[:, 0], from_pandas=True),
        "count": pa.array(rng.integers(-10 ** 12, 10 ** 12, n)),
        "t": pa.array(values[:, 1], from_pandas=True),
        "symbol": pa.array([("", "A1BG", "TP53")[i % 3] for i in range(n)]),
        "p": pa.array(values[:, 2], from_pandas=True),
        "small": pa.array(rng.integers(0, 100, n).astype(np.int16)),
    })


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("delimiter", ["\t", ","])
def test_same_bytes_as_arrow(monkeypatch, threads: int, delimiter: str) -> None:
    monkeypatch.setattr(delimited_rows, "ROWS_PER_TASK", 1000)
    table = _table(5_500).slice(7, 5_000)  # sliced: offsets into shared buffers
    pieces = format_rows(table.columns, delimiter, threads=threads)
    assert pieces is not None
    lines = list(pieces)
    assert len(lines) == 5
    assert b"".join(lines) == _arrow_text(table, delimiter)


@pytest.mark.parametrize("threads", [1, 2])
def test_runs_of_one_value_as_arrow_writes_them(monkeypatch, threads: int) -> None:
    """A value equal to the one above it is copied from its text (adjusted p-values sorted by
    p come in runs): the same bytes, across pieces too, with NaN, infinities and both zeros."""
    monkeypatch.setattr(delimited_rows, "ROWS_PER_TASK", 333)
    rng = np.random.default_rng(4)
    choices = np.array([0.5, 1.0, np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-300, 0.1234567890123])
    runs = np.repeat(rng.choice(choices, 400), rng.integers(1, 9, 400))
    other = np.repeat(rng.standard_normal(300), 3)[: runs.shape[0]]
    table = pa.table({"a": pa.array(runs, from_pandas=True),
                      "b": pa.array(np.resize(other, runs.shape[0]), from_pandas=True)})
    pieces = format_rows(table.columns, "\t", threads=threads)
    assert pieces is not None
    assert b"".join(pieces) == _arrow_text(table, "\t")


@pytest.mark.parametrize("threads", [1, 2])
def test_text_of_every_length_last_and_alone(monkeypatch, threads: int) -> None:
    """Text is copied eight bytes at a time: IDs of 0 to 40 bytes, the last column of a row
    and of the buffer (the copy writes past a text's end, into room kept for it)."""
    monkeypatch.setattr(delimited_rows, "ROWS_PER_TASK", 97)
    rng = np.random.default_rng(5)
    words = ["x" * int(k) + str(i) for i, k in enumerate(rng.integers(0, 40, 700))]
    words[-1] = ""
    values = rng.standard_normal(700)
    for columns in ({"v": values, "id": words}, {"id": words}, {"a": words, "b": words[::-1]}):
        table = pa.table(columns)
        pieces = format_rows(table.columns, "\t", threads=threads)
        assert pieces is not None
        assert b"".join(pieces) == _arrow_text(table, "\t")


def test_numpy_columns_and_nan_as_na() -> None:
    ids = np.arange(4, dtype=np.int64) * 10 ** 15
    values = np.array([0.5, np.nan, -0.0, 1e-300])
    lines = format_rows([ids, values], "\t")
    assert lines is not None
    lines = list(lines)
    assert b"".join(lines) == b"0\t0.5\n1000000000000000\tNA\n2000000000000000\t-0\n" \
                              b"3000000000000000\t1e-300\n"


def test_empty_and_unsupported_columns() -> None:
    assert list(format_rows([np.empty(0), pa.array([], type=pa.string())], "\t") or [0]) == []
    assert format_rows([np.zeros(3, dtype=np.float32)], "\t") is None
    assert format_rows([pa.array([True, False])], "\t") is None
    assert format_rows([pa.array(["a", None])], "\t") is None  # nulls in text: Arrow's job
    assert format_rows([pa.array([1, None])], "\t") is None


def test_long_chunked_text_is_combined_with_64_bit_offsets() -> None:
    """A chunked text column is made one large_string array (more than 2 GiB of text in
    chunks overflows 32-bit offsets when combined as string)."""
    chunked = pa.chunked_array([pa.array(["a", "bc"]), pa.array([], type=pa.string()),
                                pa.array(["d"])])
    lines = format_rows([chunked, np.array([1.5, 2.0, -3.0])], "\t")
    assert lines is not None
    assert b"".join(lines) == b"a\t1.5\nbc\t2\nd\t-3\n"


def test_pieces_are_made_as_they_are_taken(monkeypatch) -> None:
    """With threads, only a few pieces exist at a time (the in-memory writer writes them as
    they come), and they come in row order."""
    monkeypatch.setattr(delimited_rows, "ROWS_PER_TASK", 10)
    values = np.arange(1000, dtype=np.float64)
    pieces = format_rows([values], "\t", threads=2)
    assert pieces is not None
    first = next(pieces)
    assert bytes(first) == b"".join(b"%d\n" % i for i in range(10))
    rest = b"".join(pieces)
    assert rest == b"".join(b"%d\n" % i for i in range(10, 1000))
