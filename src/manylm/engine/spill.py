"""Per-feature results between the passes of a streamed run: in memory, or spilled to files.

A streamed run keeps a few numbers per feature between its passes (the fit's summaries, then the
table's values) and the feature IDs. When they do not fit in the memory budget they go to files
in a private directory (``.manylm-spill-<host>-<pid>-<random>``), beside the output or in
``TMPDIR``. Files are written with ``pwrite`` and read with ``preadv`` (the data go through the
page cache, not the process's memory); a gather in arbitrary row order maps the file for the
duration of one block and unmaps it afterwards, so the process's resident memory stays bounded.

Clean-up: the directory is removed when the run ends, however it ends (``finally``; the engine
turns SIGTERM into an interruption so that this also runs on ``kill``). A run killed outright
(SIGKILL, power loss) leaves its directory behind; the next run that spills to the same place
removes directories whose process is gone (same host, dead pid:
:func:`~manylm.io.owned_names.remove_orphans`). Nothing is reused: a stale
directory is only deleted.

A full disk (ENOSPC, EDQUOT) while spilling is reported as one :class:`~manylm.errors.ManylmError`
naming the directory. Space for every field is reserved up front with ``posix_fallocate``, so a
disk too small for the run usually fails before the long part starts.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from manylm.engine.plan import format_bytes
from manylm.errors import ManylmError
from manylm.io.owned_names import owned_name, remove_orphans
from manylm.parallel import cpu_count

__all__ = ["FeatureStore", "IdStore", "SpillDirectory", "disk_full_as_error", "field_path",
           "spill_parent", "write_field_rows"]

PREFIX = ".manylm-spill-"
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
_CHUNK = 1 << 30  # bytes per pwrite/preadv call (Linux moves at most ~2 GiB per call)


@contextlib.contextmanager
def disk_full_as_error(what: str) -> Iterator[None]:
    """Turn "no space left on device" into one clear :class:`ManylmError` (``what`` says what
    was being done; the folder of the file that could not be written is named too)."""
    try:
        yield
    except OSError as error:
        if error.errno in _DISK_FULL:
            folder = os.path.dirname(os.fspath(error.filename)) if error.filename else ""
            where = f" in {folder}" if folder and folder not in what else ""
            raise ManylmError(
                f"No space left on the device while {what}{where}: free some space there, or write "
                "elsewhere (--out for the table; TMPDIR for temporary files). Nothing was "
                "written."
            ) from None
        raise


def spill_parent(out: str | os.PathLike[str] | None,
                 spill_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where a run's :class:`SpillDirectory` goes: ``spill_dir`` if given, else beside the
    output file (the table is then renamed, not copied, onto it), else ``TMPDIR``."""
    if spill_dir is not None:
        return Path(spill_dir)
    if out is not None and os.fspath(out) != "-":
        return Path(out).absolute().parent
    return Path(tempfile.gettempdir())


class SpillDirectory:
    """A private directory for one run's spill files, removed on exit; stale ones are cleaned.

    Parameters
    ----------
    parent : path
        Where to create it (beside the output, or ``TMPDIR``). Must exist.
    """

    def __init__(self, parent: str | os.PathLike[str]) -> None:
        self.parent = Path(parent)
        self.path: Path | None = None
        self.removed_stale: list[str] = []

    def __enter__(self) -> SpillDirectory:
        if not self.parent.is_dir():
            raise ManylmError(f"Cannot spill to {self.parent}: it is not a directory.")
        self.removed_stale = remove_orphans(self.parent, PREFIX)
        name = owned_name(PREFIX)
        with disk_full_as_error(f"creating a temporary directory in {self.parent}"):
            try:
                os.mkdir(self.parent / name, 0o700)
            except PermissionError:
                raise ManylmError(
                    f"Cannot create temporary files in {self.parent} (permission denied): set "
                    "TMPDIR to a writable directory."
                ) from None
        self.path = self.parent / name
        return self

    def __exit__(self, *exc: object) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None


class FeatureStore:
    """Named float64 fields with one row per feature, in memory or in files.

    Parameters
    ----------
    n_rows : int
        Number of features.
    directory : path, optional
        Spill directory; None keeps everything in memory.
    prefix : str
        Prefix of the file names, to share a directory with other stores.
    """

    def __init__(self, n_rows: int, directory: Path | None = None, prefix: str = "") -> None:
        self.n_rows = int(n_rows)
        self.directory = directory
        self.prefix = prefix
        self._arrays: dict[str, NDArray[np.float64]] = {}
        self._files: dict[str, tuple[int, int | None, Path]] = {}  # name -> (fd, width, path)
        self._constants: dict[str, NDArray[np.float64]] = {}  # name -> every row, broadcast

    @property
    def spilled(self) -> bool:
        return self.directory is not None

    def add(self, name: str, width: int | None = None) -> None:
        """A new field: one float64 per row, or ``width`` per row (a matrix, even for 1).

        Contents are undefined until written.
        """
        if self.directory is None:
            shape = (self.n_rows,) if width is None else (self.n_rows, width)
            self._arrays[name] = np.empty(shape, dtype=np.float64)
            return
        path = field_path(self.directory, self.prefix, name)
        size = self.n_rows * (width or 1) * 8
        with disk_full_as_error(f"reserving {format_bytes(size)} of temporary files in "
                                f"{self.directory}"):
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            self._files[name] = (fd, width, path)
            if size:
                _reserve(fd, size)

    def set_constant(self, name: str, value: float) -> None:
        """Every row of a (one-column) field holds ``value``: keep the value, free the rows.

        Reads then give the value broadcast to the rows asked for (read-only, stride 0), which
        later steps treat as the one value it is (e.g. one residual df for every feature).
        """
        shape = (self.n_rows,)
        self.drop(name)
        self._constants[name] = np.broadcast_to(np.float64(value), shape)

    def adopt(self, name: str, source: FeatureStore, source_name: str) -> None:
        """Field ``source_name`` of ``source`` (the same rows, one column) becomes this store's
        field ``name``, and leaves ``source``: its file renamed, or its array moved (a copy
        only when one store is in memory and the other on disk)."""
        if source.n_rows != self.n_rows:
            raise ValueError(f"field {source_name!r} has {source.n_rows} rows, not {self.n_rows}")
        if source_name in source._constants:
            self._constants[name] = source._constants.pop(source_name)
            return
        if self.directory is None and source.directory is None:
            array = source._arrays.pop(source_name)
            if array.ndim == 2 and array.shape[1] != 1:
                raise ValueError(f"field {source_name!r} has {array.shape[1]} columns")
            self._arrays[name] = array.reshape(self.n_rows)
            return
        if self.directory is None or source.directory is None:
            self.add(name)
            self.write(name, 0, source.read_all(source_name).reshape(self.n_rows))
            source.drop(source_name)
            return
        fd, width, path = source._files[source_name]
        if width not in (None, 1):
            raise ValueError(f"field {source_name!r} has {width} columns")
        target = field_path(self.directory, self.prefix, name)
        os.rename(path, target)  # the open file follows its name
        del source._files[source_name]
        self._files[name] = (fd, None, target)

    def write(self, name: str, start: int, values: NDArray[np.floating]) -> None:
        """Rows ``start:start + len(values)`` of a field."""
        if name in self._constants:
            raise RuntimeError(f"field {name!r} was set constant; it cannot be written")
        if self.directory is None:
            self._arrays[name][start:start + values.shape[0]] = values
            return
        fd, width, _ = self._files[name]
        data = np.ascontiguousarray(values, dtype=np.float64)
        with disk_full_as_error(f"writing temporary files in {self.directory}"):
            _pwrite_all(fd, data.data.cast("B"), start * (width or 1) * 8)

    def read(self, name: str, start: int, stop: int) -> NDArray[np.float64]:
        """Rows ``start:stop`` of a field (in memory or constant: a read-only view)."""
        if name in self._constants:
            return self._constants[name][start:stop]
        if self.directory is None:
            view = self._arrays[name][start:stop]
            view.flags.writeable = False
            return view
        fd, width, _ = self._files[name]
        shape = (stop - start,) if width is None else (stop - start, width)
        out = np.empty(shape, dtype=np.float64)
        _pread_parallel([(fd, out.data.cast("B"), start * (width or 1) * 8)])
        return out

    def permute(self, name: str, order: NDArray[np.intp], buffer: NDArray[np.float64]) -> None:
        """Rewrite a one-column field (a vector, or a matrix of one column) in the order
        ``order`` (row i gets row ``order[i]``), through ``buffer`` (float64, C-contiguous, of
        the field's length). On disk the file is read through a mapping of its pages, so
        ``buffer`` is the only memory used."""
        if name in self._constants:
            return  # one value everywhere
        if self.directory is None:
            values = self._arrays[name]
            if values.ndim == 2 and values.shape[1] != 1:
                raise ValueError(f"field {name!r} has {values.shape[1]} columns: only one "
                                 "column is permuted")
            if not values.flags.c_contiguous:
                raise ValueError(f"field {name!r} is not contiguous: it cannot be permuted "
                                 "in place")
            values = values.reshape(self.n_rows)  # a view: the field's own memory
            np.take(values, order, out=buffer, mode="clip")  # "raise": buffered
            values[:] = buffer
            return
        _, width, path = self._files[name]
        if width not in (None, 1):
            raise ValueError(f"field {name!r} has {width} columns: only one column is permuted")
        mapped = np.memmap(path, dtype=np.float64, mode="r", shape=(self.n_rows,))
        try:
            np.take(mapped, order, out=buffer, mode="clip")
        finally:
            del mapped  # unmap: the pages leave this process's resident memory
        self.write(name, 0, buffer)  # a column of one value per row: the same bytes

    def read_all(self, name: str) -> NDArray[np.float64]:
        return self.read(name, 0, self.n_rows)

    def gather(self, name: str, rows: NDArray[np.intp]) -> NDArray[np.float64]:
        """Rows in any order (a copy). On disk, the file is mapped only during the call."""
        if name in self._constants:
            return np.full(rows.shape[0], self._constants[name][0])
        if self.directory is None:
            return self._arrays[name][rows]
        _, width, path = self._files[name]
        shape = (self.n_rows,) if width is None else (self.n_rows, width)
        ascending = np.argsort(rows, kind="stable")
        mapped = np.memmap(path, dtype=np.float64, mode="r", shape=shape)
        try:
            picked = mapped[rows[ascending]]  # in file order: each page is touched once
        finally:
            del mapped  # unmap: the pages leave this process's resident memory
        out = np.empty_like(picked)
        out[ascending] = picked
        return out

    def drop(self, name: str) -> None:
        """Free a field."""
        self._arrays.pop(name, None)
        self._constants.pop(name, None)
        entry = self._files.pop(name, None)
        if entry is not None:
            os.close(entry[0])
            with contextlib.suppress(OSError):
                entry[2].unlink()

    def close(self) -> None:
        for name in list(self._files) + list(self._arrays) + list(self._constants):
            self.drop(name)


def field_path(directory: Path, prefix: str, name: str) -> Path:
    """The file of a spilled :class:`FeatureStore` field."""
    return directory / f"{prefix}{name}.f8"


def write_field_rows(path: Path, start: int, values: NDArray[np.floating]) -> None:
    """Rows ``start:start + len(values)`` of a one-column field's file (:func:`field_path`),
    from another process than the store's owner (a Dask worker); the file must exist."""
    data = np.ascontiguousarray(values, dtype=np.float64)
    with disk_full_as_error(f"writing temporary files in {path.parent}"):
        fd = os.open(path, os.O_WRONLY)
        try:
            _pwrite_all(fd, data.data.cast("B"), start * 8)
        finally:
            os.close(fd)


class IdStore:
    """Feature IDs (strings) for every row, appended in row order; in memory or in files.

    Also records whether any ID holds a character that forces quoting in a text table.
    """

    def __init__(self, n_rows: int, directory: Path | None = None) -> None:
        self.n_rows = int(n_rows)
        self.directory = directory
        self._chunks: list[pa.Array] = []
        self._whole: pa.Array | None = None
        self._next_row = 0
        self._blob_size = 0
        self._lock = threading.Lock()  # the in-memory IDs are concatenated once, by one thread
        self._hashes: NDArray[np.uint64] | None = None  # of each row, as appended
        self._duplicates: list[str] | None = None
        self.special: set[str] = set()
        #: Rows (0-based) whose ID is empty or only whitespace: their number, the first few.
        self.n_blank = 0
        self.blank_rows: list[int] = []
        if directory is not None:
            with disk_full_as_error(f"reserving temporary files in {directory}"):
                self._offsets_fd = os.open(directory / "ids.offsets", os.O_RDWR | os.O_CREAT |
                                           os.O_EXCL, 0o600)
                self._blob_fd = os.open(directory / "ids.utf8", os.O_RDWR | os.O_CREAT |
                                        os.O_EXCL, 0o600)
                _reserve(self._offsets_fd, (self.n_rows + 1) * 8)
                _pwrite_all(self._offsets_fd, np.zeros(1, np.int64).data.cast("B"), 0)

    def append(self, start: int, ids: object) -> None:
        """IDs of rows ``start:start + len(ids)``; blocks must come in row order."""
        if start != self._next_row:
            raise RuntimeError(f"feature IDs out of order: got row {start}, expected "
                               f"{self._next_row}")
        array = ids if isinstance(ids, pa.Array) else pa.array(ids, type=pa.large_string())
        if array.type != pa.large_string():
            array = array.cast(pa.large_string())
        self._note_special(array)
        self._note_blank(start, array)
        self._hash(start, array)
        self._next_row += len(array)
        if self.directory is None:
            self._chunks.append(array)
            return
        offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[
            array.offset: array.offset + len(array) + 1]
        data = array.buffers()[2]
        first, last = int(offsets[0]), int(offsets[-1])
        with disk_full_as_error(f"writing temporary files in {self.directory}"):
            if last > first and data is not None:
                _pwrite_all(self._blob_fd, memoryview(data)[first:last], self._blob_size)
            shifted = offsets[1:] - first + self._blob_size
            _pwrite_all(self._offsets_fd, np.ascontiguousarray(shifted).data.cast("B"),
                        (start + 1) * 8)
        self._blob_size += last - first

    def _note_special(self, array: pa.Array) -> None:
        # One scan of the array's text bytes for the common case of plain IDs (the characters
        # are ASCII, and UTF-8 uses no byte below 0x80 inside a multi-byte character, so a byte
        # is one of them exactly when the text holds it; ~1 ns a byte, a regex over every ID
        # costs ~100 ns an ID); each character is then looked for only if one is there.
        if not _any_special_byte(array):
            return
        for char in ("\t", ",", '"', "\n", "\r"):
            if char not in self.special and pc.any(pc.match_substring(array, char)).as_py():
                self.special.add(char)

    def _note_blank(self, start: int, array: pa.Array) -> None:
        # An empty ID shows in the lengths, a whitespace-only one needs a whitespace byte: only
        # then are the IDs trimmed (a copy of their text).
        if len(array) == 0 or not (pc.any(pc.equal(pc.binary_length(array), 0)).as_py()
                                   or _text_holds(array, _WHITESPACE_BYTES)):
            return
        blank = pc.equal(pc.utf8_trim_whitespace(array), "")
        rows = np.flatnonzero(blank.to_numpy(zero_copy_only=False))
        self.n_blank += len(rows)
        self.blank_rows.extend(int(start + row) for row in rows[:max(0, 5 - len(self.blank_rows))])

    def _hash(self, start: int, array: pa.Array) -> None:
        """Hash the IDs as they come (the run's fit is busy on the other threads meanwhile)."""
        if self._hashes is None:
            self._hashes = np.empty(self.n_rows, dtype=np.uint64)
        offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[
            array.offset: array.offset + len(array) + 1]
        data = array.buffers()[2]
        text = (np.frombuffer(data, dtype=np.uint8) if data is not None
                else np.empty(0, dtype=np.uint8))
        _hash_strings(offsets, text, self._hashes[start:start + len(array)])

    @property
    def spilled(self) -> bool:
        return self.directory is not None

    def duplicates(self) -> list[str]:
        """The IDs that occur more than once, in the order of their first repeat (empty when
        every ID is unique); once every row is appended.

        A 64-bit hash of every ID, made as the IDs were appended (8 bytes per feature, from
        the first append to the first call of this, which frees them and keeps its answer),
        one sort of the hashes, and the IDs of equal hashes compared as text: no hash table of
        the IDs.
        """
        if self._duplicates is None:
            self._duplicates = self._find_duplicates()
            self._hashes = None
        return list(self._duplicates)

    def _find_duplicates(self) -> list[str]:
        if self._next_row != self.n_rows:
            raise RuntimeError(f"duplicates() after {self._next_row} of {self.n_rows} rows")
        hashes = (self._hashes if self._hashes is not None
                  else np.empty(0, dtype=np.uint64))
        ordered = np.sort(hashes)
        repeated = ordered[1:][ordered[1:] == ordered[:-1]]
        if repeated.size == 0:
            return []
        rows = np.flatnonzero(np.isin(hashes, repeated))  # in row order
        texts = self.gather(rows).to_pylist()
        seen: set[str] = set()
        found: list[str] = []
        for text in texts:  # in row order: the first repeated IDs
            if text in seen and text not in found:
                found.append(text)
            seen.add(text)
        return found

    @property
    def nbytes(self) -> int:
        """Bytes the IDs of every row take in memory (offsets and text), as read whole."""
        if self.directory is None:
            return int(self._in_memory().nbytes)
        return (self.n_rows + 1) * 8 + self._blob_size

    def _in_memory(self) -> pa.Array:
        with self._lock:
            if self._whole is None:
                self._whole = pa.concat_arrays(self._chunks) if self._chunks else pa.array(
                    [], type=pa.large_string())
                self._chunks = [self._whole]
            return self._whole

    def read(self, start: int, stop: int) -> pa.Array:
        """IDs of rows ``start:stop``."""
        if self.directory is None:
            return self._in_memory().slice(start, stop - start)
        bounds = np.empty(2, dtype=np.int64)
        _pread_all(self._offsets_fd, bounds[:1].data.cast("B"), start * 8)
        _pread_all(self._offsets_fd, bounds[1:].data.cast("B"), stop * 8)
        first, last = int(bounds[0]), int(bounds[1])
        offsets = np.empty(stop - start + 1, dtype=np.int64)
        data = np.empty(last - first, dtype=np.uint8)
        _pread_parallel([(self._offsets_fd, offsets.data.cast("B"), start * 8),
                         (self._blob_fd, data.data.cast("B"), first)])
        if first:
            offsets -= first
        # py_buffer keeps the arrays alive and uses their memory: no copy
        return pa.LargeStringArray.from_buffers(
            stop - start, pa.py_buffer(offsets), pa.py_buffer(data))

    def gather(self, rows: NDArray[np.intp]) -> pa.Array:
        """IDs of rows in any order."""
        indices = pa.array(rows, type=pa.int64())
        if self.directory is None:
            return self._in_memory().take(indices)
        with pa.memory_map(str(self.directory / "ids.offsets")) as offsets_file, \
                pa.memory_map(str(self.directory / "ids.utf8")) as blob_file:
            offsets = offsets_file.read_buffer((self.n_rows + 1) * 8)
            blob = blob_file.read_buffer(self._blob_size) if self._blob_size else pa.py_buffer(
                b"")
            whole = pa.LargeStringArray.from_buffers(self.n_rows, offsets, blob)
            # take() copies the picked strings; the mapped pages are released with the maps.
            return whole.take(indices)

    def close(self) -> None:
        self._chunks = []
        self._whole = None
        if self.directory is not None:
            for fd in (self._offsets_fd, self._blob_fd):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self.directory = None


#: The characters that make a text table quote its strings, as bytes.
_SPECIAL_BYTES = np.zeros(256, dtype=bool)
_SPECIAL_BYTES[[ord(char) for char in '\t,"\n\r']] = True


#: Whitespace, as bytes: an ID made only of these is blank.
_WHITESPACE_BYTES = np.zeros(256, dtype=bool)
_WHITESPACE_BYTES[[ord(char) for char in " \t\n\r\v\f"]] = True


def _any_special_byte(array: pa.Array) -> bool:
    """Whether the text of a (large) string array holds a tab, comma, quote or line break."""
    return _text_holds(array, _SPECIAL_BYTES)


def _text_holds(array: pa.Array, wanted: NDArray[np.bool_]) -> bool:
    """Whether the text of a (large) string array holds a byte marked in ``wanted``."""
    data = array.buffers()[2]
    if data is None or len(array) == 0:
        return False
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)
    first, last = int(offsets[array.offset]), int(offsets[array.offset + len(array)])
    text = np.frombuffer(data, dtype=np.uint8)[first:last]
    return _holds_any(text, wanted)


@numba.njit(cache=True, nogil=True)
def _holds_any(text: NDArray[np.uint8], wanted: NDArray[np.bool_]) -> bool:
    """Whether any byte of ``text`` is marked in ``wanted`` (one pass, no temporary array)."""
    for byte in text:
        if wanted[byte]:
            return True
    return False


def _reserve(fd: int, size: int) -> None:
    """Allocate the file's blocks now, so that a full disk shows before the work starts."""
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as error:
        if error.errno in _DISK_FULL:
            raise
        os.ftruncate(fd, size)  # file system without fallocate: a sparse file will do


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    view = data.cast("B") if data.format != "B" else data
    done = 0
    while done < len(view):
        written = os.pwrite(fd, view[done:done + _CHUNK], offset + done)
        if written <= 0:
            raise OSError(errno.EIO, "short write")
        done += written


#: Reads larger than this are split among threads (most of a large read's time is the kernel
#: filling new pages, which threads do side by side).
_PARALLEL_READ_BYTES = 16 << 20


def _pread_parallel(reads: list[tuple[int, memoryview, int]]) -> None:
    """Several ``(fd, out, offset)`` reads, in pieces of up to 16 MB on every core."""
    pieces = [(fd, out[begin:begin + _PARALLEL_READ_BYTES], offset + begin)
              for fd, out, offset in reads
              for begin in range(0, len(out), _PARALLEL_READ_BYTES)]
    if len(pieces) <= 1:
        for fd, out, offset in pieces:
            _pread_all(fd, out, offset)
        return
    with ThreadPoolExecutor(min(cpu_count(), len(pieces))) as pool:
        for done in pool.map(lambda piece: _pread_all(*piece), pieces):
            del done  # re-raises a thread's error here


def _pread_all(fd: int, out: memoryview, offset: int) -> None:
    done = 0
    while done < len(out):
        got = os.preadv(fd, [out[done:done + _CHUNK]], offset + done)
        if got <= 0:
            raise OSError(errno.EIO, "the temporary file is shorter than expected")
        done += got


@numba.njit(cache=True, nogil=True)
def _hash_strings(offsets: NDArray[np.int64], text: NDArray[np.uint8],
                  out: NDArray[np.uint64]) -> None:
    """FNV-1a (64-bit) of each string ``text[offsets[i]:offsets[i + 1]]``."""
    for i in range(out.shape[0]):
        h = np.uint64(0xCBF29CE484222325)
        for b in range(offsets[i], offsets[i + 1]):
            h = (h ^ np.uint64(text[b])) * np.uint64(0x100000001B3)
        out[i] = h
