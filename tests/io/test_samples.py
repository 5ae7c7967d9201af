"""Tests of manylm.io.read_sample_sheet and align_samples."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from manylm.errors import DesignError, InputError
from manylm.io import align_samples, example_paths, read_matrix, read_sample_sheet


def write(path: Path, text: str) -> Path:
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


SHEET = "sample\tgroup\tage\tdose\tbatch\n01005\tA\t30\t1.5\t1\nS2\tB\tNA\t2\t2\nS3\tA\t41\t\t3\n"


def test_read_basic(tmp_path: Path) -> None:
    sheet = read_sample_sheet(write(tmp_path / "s.tsv", SHEET))
    assert sheet.index.name == "sample"
    assert list(sheet.index) == ["01005", "S2", "S3"]
    assert list(sheet.columns) == ["group", "age", "dose", "batch"]
    assert pd.api.types.is_string_dtype(sheet["group"])
    assert sheet["group"].tolist() == ["A", "B", "A"]
    assert sheet["age"].dtype == np.float64
    assert math.isnan(sheet.loc["S2", "age"])
    assert sheet["dose"].dtype == np.float64
    assert math.isnan(sheet.loc["S3", "dose"])
    assert sheet["batch"].dtype == np.int64
    assert sheet["batch"].tolist() == [1, 2, 3]


@pytest.mark.parametrize("name", ["s.csv", "s.csv.gz", "s.tsv.gz", "s.txt"])
def test_formats(tmp_path: Path, name: str) -> None:
    text = SHEET.replace("\t", ",") if ".csv" in name else SHEET
    sheet = read_sample_sheet(write(tmp_path / name, text))
    assert list(sheet.index) == ["01005", "S2", "S3"]
    assert sheet["batch"].tolist() == [1, 2, 3]


def test_missing_strings_and_mixed(tmp_path: Path) -> None:
    text = "sample\tgroup\tcode\nS1\tNA\t007\nS2\tB\tx1\nS3\t\t3\n"
    sheet = read_sample_sheet(write(tmp_path / "s.tsv", text))
    assert sheet.loc["S2", "group"] == "B"
    assert pd.isna(sheet.loc["S1", "group"]) and pd.isna(sheet.loc["S3", "group"])
    assert sheet["code"].tolist() == ["007", "x1", "3"]  # not all numbers: strings kept as is


def test_all_missing_column_is_numeric(tmp_path: Path) -> None:
    sheet = read_sample_sheet(write(tmp_path / "s.tsv", "sample\tx\nS1\tNA\nS2\t\n"))
    assert sheet["x"].dtype == np.float64
    assert sheet["x"].isna().all()


def test_id_named_na_is_kept(tmp_path: Path) -> None:
    sheet = read_sample_sheet(write(tmp_path / "s.tsv", "sample\tx\nNA\t1\n"))
    assert list(sheet.index) == ["NA"]


def test_trailing_delimiters_ignored(tmp_path: Path) -> None:
    sheet = read_sample_sheet(write(tmp_path / "s.csv", "sample,x,\nS1,1,\nS2,2,\n"))
    assert list(sheet.columns) == ["x"]


def test_r_style_header(tmp_path: Path) -> None:
    sheet = read_sample_sheet(write(tmp_path / "s.tsv", "group\tbatch\nS1\tA\t1\nS2\tB\t2\n"))
    assert list(sheet.columns) == ["group", "batch"]
    assert list(sheet.index) == ["S1", "S2"]


def test_duplicate_sample_ids(tmp_path: Path) -> None:
    text = "sample\tx\nS1\t1\nS2\t2\nS1\t3\nS2\t4\n"
    with pytest.raises(DesignError, match=r"s\.tsv: sample ID\(s\) repeated.*'S1', 'S2'"):
        read_sample_sheet(write(tmp_path / "s.tsv", text))


def test_blank_sample_id(tmp_path: Path) -> None:
    with pytest.raises(DesignError, match="blank sample ID"):
        read_sample_sheet(write(tmp_path / "s.tsv", "sample\tx\nS1\t1\n\t2\n"))


def test_file_missing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.tsv: sample sheet not found"):
        read_sample_sheet(tmp_path / "nope.tsv")


def test_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"supported suffixes: \.tsv"):
        read_sample_sheet(write(tmp_path / "s.xls", SHEET))


def test_no_columns_besides_id(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no columns besides the sample IDs"):
        read_sample_sheet(write(tmp_path / "s.tsv", "sample\nS1\nS2\n"))


def test_no_columns_wrong_delimiter_hint(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="commas"):
        read_sample_sheet(write(tmp_path / "s.tsv", "sample,x\nS1,1\n"))


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty"):
        read_sample_sheet(write(tmp_path / "s.tsv", ""))


def test_header_only(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no sample rows"):
        read_sample_sheet(write(tmp_path / "s.tsv", "sample\tx\n"))


def test_duplicate_column_names(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"repeated.*'x'"):
        read_sample_sheet(write(tmp_path / "s.tsv", "sample\tx\tx\nS1\t1\t2\n"))


def test_unnamed_column_with_data(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"column\(s\) 3 .*no name"):
        read_sample_sheet(write(tmp_path / "s.tsv", "sample\tx\t\nS1\t1\t2\n"))


def test_ragged(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot parse"):
        read_sample_sheet(write(tmp_path / "s.tsv", "sample\tx\nS1\t1\nS2\t2\t3\t4\n"))


# ------------------------------------------------------------------------------------------
# align_samples


def sheet_frame(ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"group": [f"g{i}" for i in range(len(ids))]}, index=pd.Index(ids, name="sample")
    )


def test_align_reorders_by_id() -> None:
    sheet = sheet_frame(["S3", "S1", "S2"])
    aligned, notices = align_samples(["S1", "S2", "S3"], sheet)
    assert list(aligned.index) == ["S1", "S2", "S3"]
    assert aligned["group"].tolist() == ["g1", "g2", "g0"]
    assert aligned.index.name == "sample"
    assert notices == []


def test_align_drops_extra_rows_with_notice() -> None:
    sheet = sheet_frame(["S1", "X1", "S2", "X2"])
    aligned, notices = align_samples(pd.Index(["S2", "S1"]), sheet)
    assert list(aligned.index) == ["S2", "S1"]
    assert len(notices) == 1
    assert "'X1', 'X2'" in notices[0] and "2 sample(s)" in notices[0]


def test_align_missing_rows_error() -> None:
    cols = [f"S{i}" for i in range(15)]
    sheet = sheet_frame(cols[:2])
    with pytest.raises(DesignError) as info:
        align_samples(cols, sheet, matrix_label="expr.tsv", sheet_label="samples.tsv")
    msg = str(info.value)
    assert "13 sample(s) of expr.tsv have no row in samples.tsv" in msg
    assert "'S2'" in msg and "'S11'" in msg and "'S12'" not in msg
    assert "3 more (13 in all)" in msg


def test_align_no_match_hint() -> None:
    with pytest.raises(DesignError, match="None of the sample IDs match"):
        align_samples(["a", "b"], sheet_frame(["A", "B"]))


def test_align_duplicate_matrix_columns() -> None:
    with pytest.raises(DesignError, match="repeated"):
        align_samples(["S1", "S1"], sheet_frame(["S1"]))


def test_align_example() -> None:
    expression, samples = example_paths()
    matrix = read_matrix(expression)
    sheet = read_sample_sheet(samples)
    shuffled = sheet.iloc[::-1]
    aligned, notices = align_samples(matrix.columns, shuffled)
    assert list(aligned.index) == list(matrix.columns)
    assert notices == []
    assert aligned.shape == (57, 3)
    assert set(aligned["batch"]) == {1, 2, 3, 4, 5}
