"""``manylm convert`` through its real entry point, on real files."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_helpers import assert_user_error, in_process, manylm

from manylm.io import read_matrix
from manylm.io.block_sources import open_feature_blocks

REFERENCE = Path(__file__).parent.parent / "reference"
EXPRESSION = REFERENCE / "inputs" / "bladder_expr.tsv.gz"


@pytest.mark.parametrize("suffix", [".parquet", ".zarr"])
def test_convert_the_example_matrix(tmp_path: Path, capsys, suffix: str) -> None:
    pytest.importorskip("zarr")
    out = tmp_path / f"bladder{suffix}"
    args = ("convert", EXPRESSION, out, "--dtype", "float32", "--row-group-rows", 500)
    result = manylm(*args) if suffix == ".parquet" else in_process(capsys, *args)
    assert result.returncode == 0, result.stderr
    assert "2,026 features x 57 samples, float32, 500 rows per" in result.stdout
    source = open_feature_blocks(out)
    assert source.natural_block_rows == 500 and source.dtype == np.float32
    expected = read_matrix(EXPRESSION)
    blocks = list(source.blocks(300))
    assert [i for b in blocks for i in b.feature_ids] == list(expected.index)
    np.testing.assert_array_equal(np.concatenate([b.values for b in blocks]),
                                  expected.to_numpy().astype(np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_bad_cell_is_one_line_naming_the_row_and_nothing_is_written(tmp_path: Path,
                                                                    capsys) -> None:
    (tmp_path / "m.csv").write_text("id,a,b\ng1,1,2\ng2,3,oops\n")
    result = in_process(capsys, "convert", tmp_path / "m.csv", tmp_path / "m.parquet", "--quiet")
    assert_user_error(result, "m.csv: data row 2, feature 'g2', sample 'b': 'oops' is not a "
                              "number", only_line=True)
    assert [p.name for p in tmp_path.iterdir()] == ["m.csv"]


def test_bad_options_and_names(tmp_path: Path, capsys) -> None:
    (tmp_path / "m.tsv").write_text("id\ta\ng1\t1\n")
    assert_user_error(in_process(capsys, "convert", tmp_path / "m.tsv", tmp_path / "m.feather"),
                      "name it .parquet or .zarr", only_line=True)
    assert_user_error(in_process(capsys, "convert", tmp_path / "m.tsv", tmp_path / "m.parquet",
                                 "--row-group-rows", 0), "--row-group-rows must be a positive",
                      only_line=True)
    assert_user_error(in_process(capsys, "convert", tmp_path / "none.tsv",
                                 tmp_path / "m.parquet"), "not found", only_line=True)
    assert [p.name for p in tmp_path.iterdir()] == ["m.tsv"]


@pytest.mark.parametrize("fault, status, message", [
    ("interrupt", 130, "manylm: interrupted; no output was written."),
    ("no space", 2, "manylm: error: "),
])
def test_interrupt_or_full_disk_leaves_no_output(tmp_path: Path, monkeypatch, capsys,
                                                 fault: str, status: int, message: str) -> None:
    from manylm.cli.main import main
    from manylm.io import parquet_blocks

    frame = pd.DataFrame(np.arange(20_000.0).reshape(5000, 4), columns=list("abcd"),
                         index=[f"g{i}" for i in range(5000)])
    frame.to_csv(tmp_path / "m.tsv", sep="\t", index_label="id")
    original = parquet_blocks.ParquetMatrixWriter.write
    calls = []

    def failing(self, ids, values):
        calls.append(1)
        if len(calls) == 2:
            if fault == "interrupt":
                raise KeyboardInterrupt
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, ids, values)

    monkeypatch.setattr(parquet_blocks.ParquetMatrixWriter, "write", failing)
    monkeypatch.setattr("manylm.io.text_blocks._BLOCK_SIZE", 4096)  # several blocks of text
    code = main(["convert", str(tmp_path / "m.tsv"), str(tmp_path / "m.parquet"), "--quiet"])
    assert code == status
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message), err
    if fault == "no space":
        assert "no space left on the device while writing" in err[0]
    assert [p.name for p in tmp_path.iterdir()] == ["m.tsv"]
