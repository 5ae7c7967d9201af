"""Writing files atomically: readers see the old file or the complete new one, never a part.

A file is written under a temporary name beside its target (:func:`atomic_path`) and renamed
onto it when complete (:func:`commit_file`). One command often writes several files that only
make sense together (a table and its run record, a report): within :func:`committed_together`
they are all renamed at the end, with Ctrl-C and ``kill`` held back for those few renames, so
an interrupted or failed run leaves the old files or all the new ones. Temporary names say
which process owns them (:mod:`manylm.io.owned_names`): those a killed process left are
removed by the next one that writes the same target.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from manylm.errors import InputError
from manylm.io.owned_names import owned_name, remove_orphans

__all__ = ["InterruptedAfterOutput", "atomic_path", "commit_file", "committed_together",
           "temporary_sibling"]


class InterruptedAfterOutput(KeyboardInterrupt):
    """Ctrl-C or ``kill`` arrived while :func:`committed_together` renamed its files: every
    file was written, and the interruption is raised after."""


def temporary_sibling(target: str | os.PathLike[str]) -> Path:
    """A new temporary name beside ``target`` (``.name.tmp-<host>-<pid>-<random>``), after
    removing those that dead processes left for the same target."""
    target = Path(target)
    prefix = f".{target.name}.tmp-"
    remove_orphans(target.parent, prefix)
    return target.parent / owned_name(prefix)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Give a temporary path to write to, moved onto ``path`` only when writing succeeded.

    The temporary file is a hidden sibling of the target (:func:`temporary_sibling`), so the
    final rename is atomic on the same file system; it is made by :func:`commit_file` (at the
    end of :func:`committed_together` when one is open). If the block raises anything,
    including :class:`KeyboardInterrupt`, the temporary file is removed and the target is left
    as it was.

    Parameters
    ----------
    path : str or path-like
        The file to create or replace. Its directory must exist.

    Yields
    ------
    pathlib.Path
        The temporary path. The block must create it. Its name does not end with the target's
        suffix, so writers must be told the format (and compression) explicitly.

    Raises
    ------
    InputError
        If the directory of ``path`` does not exist or ``path`` is a directory.
    FileNotFoundError
        If the block finished without creating the temporary file.

    Examples
    --------
    >>> with atomic_path("results.tsv") as tmp:  # doctest: +SKIP
    ...     tmp.write_text("a\\tb\\n")
    """
    target = Path(path)
    parent = target.parent
    if not parent.is_dir():
        raise InputError(
            f"{os.fspath(path)}: cannot write the file: directory {os.fspath(parent)!r} does "
            f"not exist; create it first"
        )
    if target.is_dir():
        raise InputError(f"{os.fspath(path)}: is a directory; give a file name to write to")
    tmp = temporary_sibling(target)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp} for {os.fspath(path)}")
        commit_file(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


class _Pending:
    """The renames :func:`committed_together` makes at its end: (temporary, target) pairs."""

    def __init__(self) -> None:
        self.renames: list[tuple[Path, Path]] = []
        self.thread = threading.get_ident()


_PENDING: list[_Pending] = []


def commit_file(temporary: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Move a complete ``temporary`` file onto ``target``: now, or, within
    :func:`committed_together` (on its thread), with the others at its end. A temporary file
    elsewhere than beside the target (a run's spill directory, which is removed before the end)
    is first moved beside it, on the same file system."""
    temporary, target = Path(temporary), Path(target)
    pending = _PENDING[-1] if _PENDING and _PENDING[-1].thread == threading.get_ident() else None
    if pending is None:
        os.replace(temporary, target)
        return
    if temporary.parent.absolute() != target.parent.absolute():
        sibling = temporary_sibling(target)
        os.replace(temporary, sibling)
        temporary = sibling
    pending.renames.append((temporary, target))


@contextlib.contextmanager
def committed_together() -> Iterator[None]:
    """Within the block, every file written through :func:`atomic_path` (or handed to
    :func:`commit_file`) on this thread stays under its temporary name; when the block ends
    normally they are renamed onto their targets one after the other, in the order they were
    completed, with Ctrl-C and ``kill`` held back meanwhile (when the block runs on the main
    thread, where Python handles signals). If the block raises, the temporary files are
    removed and no target is touched.

    An interruption that arrives during the renames is raised after them as
    :class:`InterruptedAfterOutput` (the output is complete).
    """
    pending = _Pending()
    _PENDING.append(pending)
    try:
        yield
    except BaseException:
        for temporary, _ in pending.renames:
            with contextlib.suppress(OSError):
                temporary.unlink()
        raise
    finally:
        _PENDING.remove(pending)
    _rename_all(pending.renames)


_HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _rename_all(renames: list[tuple[Path, Path]]) -> None:
    """Rename every pair; Ctrl-C and ``kill`` are noted meanwhile, not acted on (their Python
    handlers, which run on the main thread whichever thread received the signal, are replaced
    for these few system calls), and raised after as :class:`InterruptedAfterOutput`."""
    arrived: list[int] = []
    hold = threading.current_thread() is threading.main_thread()
    previous = {}
    if hold:
        for number in _HELD_SIGNALS:
            previous[number] = signal.signal(number, lambda signum, frame: arrived.append(signum))
    try:
        for temporary, target in renames:
            os.replace(temporary, target)
    except BaseException:
        for temporary, _ in renames:
            with contextlib.suppress(OSError):
                temporary.unlink()
        raise
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
    if arrived:
        raise InterruptedAfterOutput
