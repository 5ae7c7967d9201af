"""Releasing the page cache of written bytes changes nothing in the file."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from manylm.io import page_cache
from manylm.io.page_cache import CacheReleasingFile


def test_same_content_with_releases(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(page_cache, "STEP_BYTES", 1000)
    monkeypatch.setattr(page_cache, "LAG_BYTES", 3000)
    data = np.random.default_rng(0).integers(0, 255, 100_000, dtype=np.uint8).tobytes()
    path = tmp_path / "out.bin"
    with open(path, "wb") as handle:
        sink = CacheReleasingFile(handle)
        for start in range(0, len(data), 777):
            sink.write(memoryview(data)[start:start + 777])
        assert sink.tell() == len(data)
        sink.close()
    assert path.read_bytes() == data
    with open(tmp_path / "out.gz", "wb") as handle, gzip.GzipFile(
            fileobj=CacheReleasingFile(handle), mode="wb") as compressed:  # type: ignore[arg-type]
        compressed.write(data)
    assert gzip.decompress((tmp_path / "out.gz").read_bytes()) == data


def test_a_pipe_is_written_as_usual(monkeypatch) -> None:
    monkeypatch.setattr(page_cache, "STEP_BYTES", 10)
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb") as handle:
        sink = CacheReleasingFile(handle)
        sink.write(b"x" * 20)  # posix_fadvise fails on a pipe: ignored from then on
        sink.write(b"y" * 20)
        sink.flush()
    with os.fdopen(read_end, "rb") as reader:
        assert reader.read() == b"x" * 20 + b"y" * 20
