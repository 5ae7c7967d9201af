"""Tests of manylm.io.atomic_path."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from manylm.errors import InputError
from manylm.io import atomic_path
from manylm.io.atomic import InterruptedAfterOutput, commit_file, committed_together


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


def _dead_pid() -> int:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    return int(finished.stdout)


def test_temporary_left_by_a_killed_process_is_removed(tmp_path: Path) -> None:
    """A temporary file of the same target whose process is gone (SIGKILL) goes at the next
    write; one of another target, or of a live process, stays."""
    host = os.uname().nodename
    orphan = tmp_path / f".out.txt.tmp-{host}-{_dead_pid()}-0a1b2c3d"
    live = tmp_path / f".out.txt.tmp-{host}-{os.getppid()}-0a1b2c3d"
    other = tmp_path / f".other.txt.tmp-{host}-{_dead_pid()}-0a1b2c3d"
    for path in (orphan, live, other):
        path.write_text("partial")
    with atomic_path(tmp_path / "out.txt") as tmp:
        assert tmp.name.startswith(f".out.txt.tmp-{host}-{os.getpid()}-")
        tmp.write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name,
                                                                 "out.txt"])


def test_committed_together_renames_at_the_end(tmp_path: Path) -> None:
    table, record = tmp_path / "t.tsv", tmp_path / "t.tsv.run.json"
    table.write_text("old table")
    with committed_together():
        with atomic_path(table) as tmp:
            tmp.write_text("new table")
        assert table.read_text() == "old table"
        with atomic_path(record) as tmp:
            tmp.write_text("{}")
        assert not record.exists()
    assert table.read_text() == "new table" and record.read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.tsv", "t.tsv.run.json"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_committed_together_failure_writes_nothing(tmp_path: Path,
                                                    error: type[BaseException]) -> None:
    table = tmp_path / "t.tsv"
    table.write_text("old table")
    with pytest.raises(error), committed_together():
        with atomic_path(table) as tmp:
            tmp.write_text("new table")
        raise error("the run record could not be written")
    assert table.read_text() == "old table"
    assert [p.name for p in tmp_path.iterdir()] == ["t.tsv"]


def test_file_made_elsewhere_waits_beside_its_target(tmp_path: Path) -> None:
    """A table written in a run's spill directory (removed before the end) is moved beside
    its target at once, and renamed onto it with the others."""
    spill, out = tmp_path / "spill", tmp_path / "out"
    spill.mkdir(), out.mkdir()
    with committed_together():
        (spill / "table").write_text("rows")
        commit_file(spill / "table", out / "t.tsv")
        shutil.rmtree(spill)
        assert [p.name.startswith(".t.tsv.tmp-") for p in out.iterdir()] == [True]
    assert [p.name for p in out.iterdir()] == ["t.tsv"]
    assert (out / "t.tsv").read_text() == "rows"


def test_interruption_while_renaming_comes_after_every_file(tmp_path: Path, monkeypatch) -> None:
    """Ctrl-C or kill during the final renames is held until they are done, then raised as
    InterruptedAfterOutput: the output is complete."""
    from manylm.io import atomic

    real = os.replace
    sent = []

    def replace_and_signal(source, target) -> None:
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # a handler would run here
        real(source, target)

    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        monkeypatch.setattr(atomic.os, "replace", replace_and_signal)
        with pytest.raises(InterruptedAfterOutput), committed_together():
            for name in ("a", "b"):
                with atomic_path(tmp_path / name) as tmp:
                    tmp.write_text(name)
        assert signal.getsignal(signal.SIGTERM) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
