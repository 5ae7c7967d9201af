"""Repeated feature IDs are refused by the streaming engine, as by the in-memory one, across
chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import manylm
from manylm.engine.spill import IdStore
from manylm.engine.streaming import fit_streaming
from manylm.io.block_sources import open_feature_blocks
from manylm.io.parquet_blocks import ParquetMatrixWriter


@pytest.mark.parametrize("spilled", [False, True])
def test_id_store_finds_repeated_ids(tmp_path: Path, spilled: bool) -> None:
    ids = np.array([f"g{i}" for i in range(3000)], dtype=object)
    repeated = ids.copy()
    repeated[2500], repeated[2999], repeated[10] = "g7", "g3", "g3"
    for name, values, expected in (("unique", ids, []), ("repeated", repeated, ["g3", "g7"])):
        directory = tmp_path / name if spilled else None
        if directory is not None:
            directory.mkdir()
        store = IdStore(3000, directory)
        store.append(0, values[:1000])
        with pytest.raises(RuntimeError, match="after 1000 of 3000 rows"):
            store.duplicates()  # the IDs are hashed as they come: all of them are needed
        store.append(1000, values[1000:])
        assert store.duplicates() == expected  # in the order their repeats come
        assert store.duplicates() == expected  # the answer is kept (the hashes are freed)
        store.close()


#: The sample sheet of :func:`write_matrix`'s files: a group a/b.
SHEET = pd.DataFrame({"g": ["a", "b"] * 4}, index=[f"s{i}" for i in range(8)])


def write_matrix(path: Path, changed: dict[int, str]) -> Path:
    """A 4096 x 8 Parquet matrix in row groups of 1024, IDs ``f0``... but the rows
    ``changed``."""
    writer = ParquetMatrixWriter(path, list(SHEET.index), np.dtype(np.float32), 1024)
    ids = np.array([f"f{i}" for i in range(4096)], dtype=object)
    for row, new_id in changed.items():
        ids[row] = new_id
    writer.write(ids, np.random.default_rng(0).standard_normal((4096, 8)).astype(np.float32))
    writer.close()
    return path


def test_streaming_refuses_an_id_repeated_in_another_chunk(tmp_path: Path) -> None:
    path = write_matrix(tmp_path / "m.parquet", {3000: "f5"})  # four row groups later
    out = tmp_path / "out.tsv"
    repeated = r"m\.parquet: 1 feature ID\(s\) occur more than once: 'f5'.*remove or rename"
    with pytest.raises(manylm.DataError, match=repeated):
        fit_streaming(open_feature_blocks(str(path)), "~ g", samples=SHEET, coef="g[T.b]",
                      out=str(out), memory=1 << 20)
    assert not out.exists()


@pytest.mark.parametrize("blank", ["", "  \t"])
def test_streaming_refuses_a_blank_id_as_in_memory(tmp_path: Path, blank: str) -> None:
    """An empty or whitespace-only feature ID is refused by the streaming engine with the
    in-memory reader's message (it was accepted, and written as a row without an ID)."""
    from manylm.io import read_matrix

    path = write_matrix(tmp_path / "m.parquet", {2049: blank, 3999: blank})
    message = r"m\.parquet: 2 feature row\(s\) have a blank feature ID \(data rows 2050, 4000\)"
    with pytest.raises(manylm.DataError, match=message):
        read_matrix(path)
    out = tmp_path / "out.tsv"
    for memory in (1 << 20, None):  # spilled or not
        with pytest.raises(manylm.DataError, match=message):
            fit_streaming(open_feature_blocks(str(path)), "~ g", samples=SHEET,
                          coef="g[T.b]", out=str(out), memory=memory)
    assert not out.exists()
