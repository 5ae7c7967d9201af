"""Writing files atomically: readers see the old file or the complete new one, never a part."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from manylm.errors import InputError

__all__ = ["atomic_path"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Give a temporary path to write to, moved onto ``path`` only when writing succeeded.

    The temporary file is a hidden sibling of the target (``.name.tmp-<random>`` in the same
    directory), so the final :func:`os.replace` is an atomic rename on the same file system.
    If the block raises anything, including :class:`KeyboardInterrupt`, the temporary file is
    removed and the target is left as it was.

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
    tmp = parent / f".{target.name}.tmp-{secrets.token_hex(6)}"
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp} for {os.fspath(path)}")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
