"""Temporary files and directories named after the process that owns them.

Everything manylm writes before it is complete (a table, a run record, a converted matrix, a
streamed run's spill directory) has a name ``<prefix><host>-<pid>-<random>`` beside its target.
A process killed outright (SIGKILL, power loss) cannot remove what it left; the next process
that writes to the same place removes those whose owner is gone: same host, and no process
with that pid. Entries of other hosts (a shared file system) and of live processes are never
touched, nor names of any other shape.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from pathlib import Path

__all__ = ["owned_name", "process_alive", "remove_orphans"]


def owned_name(prefix: str) -> str:
    """A new name ``<prefix><host>-<pid>-<random>`` for a temporary file or directory."""
    return f"{prefix}{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


def remove_orphans(parent: str | os.PathLike[str], prefix: str) -> list[str]:
    """Delete the entries of ``parent`` named by :func:`owned_name` with ``prefix`` whose
    process is gone (this host, dead pid); returns their paths. Errors are ignored: this is
    tidying, and a directory that cannot be listed is reported by whatever writes there."""
    host = socket.gethostname()
    removed: list[str] = []
    try:
        entries = [entry for entry in os.scandir(parent) if entry.name.startswith(prefix)]
    except OSError:
        return removed
    for entry in entries:
        owner, _, token = entry.name[len(prefix):].rpartition("-")
        owner_host, _, pid_text = owner.rpartition("-")
        if owner_host != host or not pid_text.isdigit() or not token:
            continue
        if process_alive(int(pid_text)):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            continue
        removed.append(str(Path(entry.path)))
    return removed


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:  # e.g. a pid too large for the platform
        return False
    return True
