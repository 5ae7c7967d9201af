"""Tests of manylm.io.owned_names: temporary names that say which process owns them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from manylm.io.owned_names import owned_name, process_alive, remove_orphans


def _dead_pid() -> int:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    return int(finished.stdout)


def test_name_says_host_and_process() -> None:
    name = owned_name(".x.tmp-")
    assert name.startswith(f".x.tmp-{os.uname().nodename}-{os.getpid()}-")
    assert owned_name(".x.tmp-") != name


def test_only_entries_of_dead_processes_here_are_removed(tmp_path: Path) -> None:
    """Files and directories of a dead process on this host go; those of a live process, of
    another host, with another prefix, or of another shape stay."""
    host, dead = os.uname().nodename, _dead_pid()
    assert not process_alive(dead) and process_alive(os.getpid())
    orphan_dir = tmp_path / f".p-{host}-{dead}-1234abcd"
    orphan_file = tmp_path / f".p-{host}-{dead}-99999999"
    alive = tmp_path / f".p-{host}-{os.getpid()}-1234abcd"
    elsewhere = tmp_path / f".p-other-host-{dead}-1234abcd"
    other_prefix = tmp_path / f".q-{host}-{dead}-1234abcd"
    old_style = tmp_path / ".p-0123456789ab"
    unrelated = tmp_path / "results.tsv"
    orphan_dir.mkdir()
    (orphan_dir / "inside").write_text("x")
    for path in (orphan_file, alive, elsewhere, other_prefix, old_style, unrelated):
        path.write_text("x")
    assert sorted(remove_orphans(tmp_path, ".p-")) == sorted([str(orphan_dir),
                                                               str(orphan_file)])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (alive, elsewhere, other_prefix, old_style, unrelated))


def test_missing_directory_is_nothing_to_remove(tmp_path: Path) -> None:
    assert remove_orphans(tmp_path / "absent", ".p-") == []
