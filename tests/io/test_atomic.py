"""Tests of manylm.io.atomic_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from manylm.errors import InputError
from manylm.io import atomic_path


def test_success_replaces_target(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".out.txt.tmp-")
        assert not tmp.exists()
        tmp.write_text("new")
        assert target.read_text() == "old"  # not replaced until the block ends
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_random_names(tmp_path: Path) -> None:
    names = set()
    for _ in range(5):
        with atomic_path(tmp_path / "x") as tmp:
            tmp.write_text("")
            names.add(tmp.name)
    assert len(names) == 5


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failure_leaves_nothing(tmp_path: Path, error: type[BaseException]) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(error), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise error("boom")
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_old_target(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(ValueError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise ValueError
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_nothing_written(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "out.txt"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"), atomic_path(tmp_path / "no" / "x"):
        pass


def test_target_is_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"), atomic_path(tmp_path):
        pass
