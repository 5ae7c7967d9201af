"""Tests of manylm.io.run_record."""

from __future__ import annotations

import datetime
import hashlib
import json
import platform
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from manylm.io import file_fingerprint, package_versions, write_run_record


def test_file_fingerprint(tmp_path: Path) -> None:
    data = bytes(range(256)) * 10_000  # > 2 MiB: several blocks
    path = tmp_path / "x.bin"
    path.write_bytes(data)
    fp = file_fingerprint(path)
    modified = fp.pop("modified")
    assert fp == {
        "path": str(path.absolute()),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    stamp = datetime.datetime.fromtimestamp(path.stat().st_mtime_ns // 10**9, datetime.UTC)
    assert modified == stamp.strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{path.stat().st_mtime_ns % 10**9:09d}Z")


def test_large_files_are_identified_without_a_checksum_unless_asked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import manylm.io.run_record as run_record

    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 2048)
    monkeypatch.setattr(run_record, "CHECKSUM_MAX_BYTES", 1024)
    skipped = file_fingerprint(path)
    assert skipped["sha256"] is None and skipped["size"] == 2048
    assert "--checksum" in skipped["sha256_skipped"] and skipped["modified"]
    assert file_fingerprint(path, checksum=True)["sha256"] == hashlib.sha256(
        b"x" * 2048).hexdigest()
    assert file_fingerprint(tmp_path / "big.bin", checksum=False)["sha256"] is None
    small = tmp_path / "small.bin"
    small.write_bytes(b"y" * 1024)
    assert file_fingerprint(small)["sha256"] == hashlib.sha256(b"y" * 1024).hexdigest()


def test_file_fingerprint_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("e.tsv").write_text("")
    fp = file_fingerprint("e.tsv")
    assert Path(fp["path"]).is_absolute()
    assert fp["size"] == 0
    assert fp["sha256"] == hashlib.sha256(b"").hexdigest()


def test_package_versions() -> None:
    versions = package_versions()
    assert versions["python"] == platform.python_version()
    for name in ("numpy", "pandas", "pyarrow"):
        assert isinstance(versions[name], str) and versions[name]
    assert "anndata" not in versions


def test_write_run_record(tmp_path: Path) -> None:
    record = {
        "inputs": {"expression": {"path": Path("/x/e.tsv"), "size": np.int64(3)}},
        "s2_prior": np.float64(0.25),
        "df_prior": float("inf"),
        "missing": np.nan,
        "na": pd.NA,
        "coefficients": np.array([1.5, np.nan]),
        "names": ("a", "b"),
        "flag": np.bool_(True),
        "when": datetime.datetime(2024, 1, 2, 3, 4, 5),
        7: "int key",
    }
    path = tmp_path / "run.json"
    write_run_record(path, record)
    text = path.read_text()
    assert text.endswith("\n")
    assert '\n  "inputs": {\n' in text  # indent 2
    data = json.loads(text)
    assert data == {
        "inputs": {"expression": {"path": "/x/e.tsv", "size": 3}},
        "s2_prior": 0.25,
        "df_prior": None,
        "missing": None,
        "na": None,
        "coefficients": [1.5, None],
        "names": ["a", "b"],
        "flag": True,
        "when": "2024-01-02T03:04:05",
        "7": "int key",
    }
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_write_run_record_unknown_type(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    with pytest.raises(TypeError, match=r"record\['x'\]\[0\] has type object"):
        write_run_record(path, {"x": [object()]})
    assert list(tmp_path.iterdir()) == []


def test_a_directory_is_identified_by_its_files(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A Zarr store (a directory) gets a SHA-256 over its files' relative paths, sizes and
    bytes: the same wherever the store is copied, another when a chunk changes or a file is
    added; above the size limit, total size, file count and latest time only."""
    import shutil

    import manylm.io.run_record as run_record

    store = tmp_path / "m.zarr"
    (store / "values" / "c" / "0").mkdir(parents=True)
    (store / "zarr.json").write_text('{"zarr_format": 3}')
    (store / "values" / "c" / "0" / "0").write_bytes(b"\x01" * 3000)
    (store / "values" / "c" / "0" / "1").write_bytes(b"\x02" * 10)
    fp = file_fingerprint(store)
    assert fp["path"] == str(store.absolute())
    assert (fp["size"], fp["files"]) == (3000 + 10 + len('{"zarr_format": 3}'), 3)
    assert len(fp["sha256"]) == 64 and fp["modified"].endswith("Z")
    copy = tmp_path / "elsewhere" / "copy.zarr"
    shutil.copytree(store, copy)
    assert file_fingerprint(copy)["sha256"] == fp["sha256"]
    (copy / "values" / "c" / "0" / "1").write_bytes(b"\x03" * 10)
    assert file_fingerprint(copy)["sha256"] != fp["sha256"]
    shutil.rmtree(copy)
    shutil.copytree(store, copy)
    (copy / "values" / "c" / "0" / "2").write_bytes(b"")
    assert file_fingerprint(copy)["sha256"] != fp["sha256"]
    # A file's bytes moved to another name is another store.
    (copy / "values" / "c" / "0" / "2").unlink()
    (copy / "values" / "c" / "0" / "1").rename(copy / "values" / "c" / "0" / "3")
    assert file_fingerprint(copy)["sha256"] != fp["sha256"]
    monkeypatch.setattr(run_record, "CHECKSUM_MAX_BYTES", 1024)
    large = file_fingerprint(store)
    assert large["sha256"] is None and "number of files" in large["sha256_skipped"]
    assert file_fingerprint(store, checksum=True)["sha256"] == fp["sha256"]
