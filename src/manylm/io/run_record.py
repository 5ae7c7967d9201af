"""The run record: a JSON file saying what was run, on which inputs, with which versions."""

from __future__ import annotations

import datetime as _dt
import enum
import hashlib
import importlib.metadata
import json
import math
import os
import platform
from collections.abc import Mapping
from pathlib import Path, PurePath
from stat import S_ISREG
from typing import Any

import numpy as np
import pandas as pd

from manylm.io.atomic import atomic_path

__all__ = ["CHECKSUM_MAX_BYTES", "directory_fingerprint", "file_fingerprint", "package_versions",
           "write_run_record"]

_PACKAGES = ("manylm", "numpy", "scipy", "pandas", "formulaic", "pyarrow")


#: Inputs up to this size get a SHA-256 in the run record by default; larger ones are identified
#: by size and modification time unless a checksum is asked for (``--checksum``): hashing costs
#: ~0.7 s of CPU per GB (1.5 GB/s here), 15% of a streamed run over a 4 GB matrix.
CHECKSUM_MAX_BYTES = 1 << 30


def file_fingerprint(path: str | os.PathLike[str], *, checksum: bool | None = None
                     ) -> dict[str, Any]:
    """Identify a file by absolute path, size, modification time and SHA-256 of its contents.

    A directory (a Zarr store) is identified the same way by :func:`directory_fingerprint`.

    Parameters
    ----------
    path : str or path-like
        The file; read a buffer at a time, so any size is fine.
    checksum : bool, optional
        Compute the SHA-256 (True), or not (False); by default only for files up to
        :data:`CHECKSUM_MAX_BYTES` (1 GiB).

    Returns
    -------
    dict
        ``{"path": str, "size": int, "modified": str, "sha256": str | None}``: ``path`` is
        absolute, ``modified`` the modification time (UTC, ISO 8601 with nanoseconds),
        ``sha256`` the lower-case hex digest, or None when not computed (then
        ``"sha256_skipped"`` says why).
    """
    p = Path(path).absolute()
    if p.is_dir():
        return directory_fingerprint(p, checksum=checksum)
    with open(p, "rb") as fh:
        stat = os.fstat(fh.fileno())
        out: dict[str, Any] = {"path": str(p), "size": stat.st_size,
                               "modified": _modified(stat.st_mtime_ns)}
        if checksum is None:
            checksum = stat.st_size <= CHECKSUM_MAX_BYTES
        if not checksum:
            out["sha256"] = None
            out["sha256_skipped"] = (f"larger than {CHECKSUM_MAX_BYTES >> 30} GiB: identified "
                                     "by size and modification time (--checksum computes it)")
            return out
        # hashlib reads into one reused buffer (no new block of memory per read)
        digest = hashlib.file_digest(fh, "sha256")
        out["size"] = fh.tell()
    out["sha256"] = digest.hexdigest()
    return out


def directory_fingerprint(path: str | os.PathLike[str], *, checksum: bool | None = None
                          ) -> dict[str, Any]:
    """Identify a directory (a Zarr store) by the files it holds, as :func:`file_fingerprint`
    identifies a file.

    The digest is a SHA-256 over the store's regular files in the order of their relative paths
    (POSIX, sorted), each fed as its relative path, a NUL byte, its size (8 bytes, little
    endian) and its bytes. It changes when a file is added, removed, renamed or rewritten, and
    not when the store is copied or moved elsewhere: its metadata and every chunk count, as
    every byte of a file does. It costs what hashing one file of the store's total size costs
    (~0.7 s of CPU per GB) plus one ``stat`` per file, and is computed under the same rule:
    by default only up to :data:`CHECKSUM_MAX_BYTES` in all; larger stores are identified by
    total size, number of files and latest modification time. Files that vanish while the
    store is listed are left out (a store being rewritten is not what was read anyway), so a
    readable directory never makes this fail.

    Parameters
    ----------
    path : str or path-like
        The directory.
    checksum : bool, optional
        As for :func:`file_fingerprint`.

    Returns
    -------
    dict
        ``{"path": str, "size": int, "files": int, "modified": str, "sha256": str | None}``:
        ``size`` is the files' total size, ``modified`` the latest modification time of a file
        or of the directory itself; ``"sha256_skipped"`` says why when ``sha256`` is None.
    """
    root = Path(path).absolute()
    files: list[tuple[str, str, int]] = []  # relative path, absolute path, size
    latest = root.stat().st_mtime_ns
    for folder, folders, names in os.walk(root):
        folders.sort()
        for name in names:
            full = os.path.join(folder, name)
            try:
                status = os.stat(full)
            except OSError:
                continue
            if not S_ISREG(status.st_mode):
                continue
            relative = PurePath(os.path.relpath(full, root)).as_posix()
            files.append((relative, full, status.st_size))
            latest = max(latest, status.st_mtime_ns)
    files.sort()
    total = sum(size for _, _, size in files)
    out: dict[str, Any] = {"path": str(root), "size": total, "files": len(files),
                           "modified": _modified(latest)}
    if checksum is None:
        checksum = total <= CHECKSUM_MAX_BYTES
    if not checksum:
        out["sha256"] = None
        out["sha256_skipped"] = (f"larger than {CHECKSUM_MAX_BYTES >> 30} GiB: identified by "
                                 "total size, number of files and latest modification time "
                                 "(--checksum computes it)")
        return out
    digest = hashlib.sha256()
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    for relative, full, size in files:
        try:
            with open(full, "rb") as fh:
                digest.update(relative.encode("utf-8") + b"\0" + size.to_bytes(8, "little"))
                while n := fh.readinto(buffer):
                    digest.update(view[:n])
        except FileNotFoundError:
            continue
    out["sha256"] = digest.hexdigest()
    return out


def _modified(mtime_ns: int) -> str:
    seconds, nanoseconds = divmod(mtime_ns, 1_000_000_000)
    moment = _dt.datetime.fromtimestamp(seconds, tz=_dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanoseconds:09d}Z"


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape manylm's results.

    Returns
    -------
    dict of str to str
        ``python`` and, for each of manylm, numpy, scipy, pandas, formulaic and pyarrow that is
        installed, its version. Packages that are not installed are left out.
    """
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            if name == "manylm":  # running from a source tree without installing
                try:
                    import manylm

                    version = getattr(manylm, "__version__", None)
                except ImportError:
                    version = None
                if version:
                    versions[name] = str(version)
    return versions


def write_run_record(path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """Write ``record`` as indented, strict JSON, atomically.

    numpy scalars and arrays become JSON numbers and lists, NaN and infinities ``null``, paths
    strings, dates ISO 8601 strings, sets and tuples lists.

    Parameters
    ----------
    path : str or path-like
        The JSON file to create or replace.
    record : mapping
        The record; keys become strings.

    Raises
    ------
    TypeError
        If a value cannot be represented in JSON (the message gives its place in the record).
    """
    data = _jsonable(record, "record")
    text = json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _jsonable(value: Any, where: str) -> Any:
    """Convert ``value`` to plain JSON types; ``where`` names its place for error messages."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        x = float(value)
        return x if math.isfinite(x) else None
    if isinstance(value, enum.Enum):
        return _jsonable(value.value, where)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value.tolist())]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        return [_jsonable(v, where) for v in sorted(value, key=repr)]
    raise TypeError(
        f"run record: {where} has type {type(value).__name__}, which cannot be written as JSON"
    )
