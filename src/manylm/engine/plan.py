"""How to run a fit: in memory or streamed, with how much memory, in blocks of how many rows.

The memory model (measured with ``tracemalloc`` on this code, see ``tests/engine/test_plan.py``):

* **Per feature**, whatever the engine: the prior is estimated from every feature's residual
  variance, df and mean, and the p-values are adjusted and sorted over all features. That needs
  about 72 bytes per feature at its peak (``moderate_variances`` on three float64 vectors), 160
  with ``trend`` or ``robust`` (the spline or lowess fit), 192 with both; the adjustment needs
  about 64 (p-values, their order, the adjusted values). 10^7 features: 0.7-1.9 GB; 10^8
  features: 7-19 GB, beyond which the global steps would need an external sort (not done).
* **Per-feature summaries** between the passes (coefficients, standard errors, variances: 2p + 5
  float64 per feature, p coefficients) and the table values (7 float64): kept in memory when they
  fit in the budget with the rest, otherwise spilled to files (read back through the page cache,
  not counted in the process's memory).
* **Blocks in flight**: the one being read, one waiting, one per worker, each rows x samples x
  itemsize (plus the weights block); the fit itself works on ~4 MB sub-blocks (48 bytes per
  value of its block, 32 MiB per worker at most).
* **The reader's cache**: when blocks are cut from larger stored blocks (Parquet row groups,
  Zarr or HDF5 chunks; ~32 MB each as ``manylm convert`` writes them), the two last decoded,
  at most the whole matrix. It is counted with the per-feature vectors: both are held before
  any block is read, and a budget below their sum is refused.

A budget (``--memory``) bounds the sum; it does not count the interpreter and libraries (~280 MB
measured at the peak of a small streamed run).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Literal

from manylm.errors import InputError
from manylm.parallel import cpu_count

__all__ = [
    "StreamingPlan",
    "available_memory",
    "choose_engine",
    "format_bytes",
    "in_memory_bytes",
    "parse_memory",
    "plan_streaming",
]

Engine = Literal["in-memory", "streaming"]

MIB = 1024**2
GIB = 1024**3
#: Bytes per feature held at once by the global steps (prior, adjustment), by option.
PER_FEATURE_BYTES = {(False, False): 72, (True, False): 160, (False, True): 160,
                     (True, True): 192}
#: Working memory of one fitting thread (sub-blocks, reused scratch arrays): about 48 bytes
#: per value of its block, up to 32 MiB (the fit works on ~4 MB sub-blocks).
WORKER_BYTES = 32 * MIB
WORKER_BYTES_PER_VALUE = 48
#: One feature's ID held in memory (an Arrow string: offset plus ~16 bytes of text).
ID_BYTES = 24
#: Stored blocks a reader keeps decoded (manylm.io.block_sources keeps two per thread).
READER_CACHED_BLOCKS = 2
#: Blocks larger than this per block gain nothing (the per-block overhead is ~1 ms).
MAX_BLOCK_BYTES = 32 * MIB
MIN_BLOCK_ROWS = 64
#: Default budget when none is given: a quarter of the free memory, within these bounds.
DEFAULT_BUDGET_RANGE = (256 * MIB, 1 * GIB)
#: The in-memory engine holds the matrix as float64 about three times over at its peak (the
#: reader's buffers, the DataFrame, the fit's copies); it is chosen when that fits in half of
#: the free memory (or in the budget, when one is given) and in :data:`IN_MEMORY_MOST`.
IN_MEMORY_COPIES = 3
#: Above this in-memory peak (about 10^5 features of 100 samples) a matrix that can be streamed
#: is streamed even when memory would hold it: the streaming engine is then faster as well as
#: leaner. Measured on 2-core machines (x 100 float32 Parquet, TSV table, whole command, in
#: memory against streamed): 10^5 features 2.0 against 1.6-1.7 s; 3 x 10^5 2.7-3.1 against
#: 2.0-2.2 s (0.8 against 0.55 GB); 10^6 4.2-6.5 against 2.8-3.4 s (1.6 against 0.6 GB). The
#: in-memory engine's copies of the matrix are new memory, whose first use costs 1-2.5 s per GB
#: on these virtual machines; the streaming engine reuses a few blocks' worth.
IN_MEMORY_MOST = 256 * MIB

_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_UNIT = {"": 1, "k": 1024, "m": MIB, "g": GIB, "t": 1024**4}


def parse_memory(text: str) -> int:
    """Bytes in a size such as ``"300M"``, ``"1.5G"``, ``"2GiB"``, ``"512k"`` or ``"1000000"``.

    Units are binary (``M`` = 1024^2 bytes), as for ``sort -S``; ``B`` and ``iB`` suffixes are
    accepted. Raises :class:`~manylm.errors.InputError` for anything else.
    """
    match = _SIZE.match(str(text))
    if match is None:
        raise InputError(f"--memory {text!r}: give a size such as 300M, 2G or 1500000000 "
                         "(bytes); units K, M, G, T are powers of 1024.")
    value = float(match.group(1)) * _UNIT[match.group(2).lower()]
    if value < 1:
        raise InputError(f"--memory {text!r}: the size must be positive.")
    return int(value)


def format_bytes(n: float) -> str:
    """``1536 * 1024**2`` -> ``"1.5 GiB"``."""
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def available_memory() -> int:
    """Memory this process can still use: the system's available memory, within a cgroup limit."""
    available: int | None = None
    try:
        import psutil

        available = int(psutil.virtual_memory().available)
    except ImportError:
        try:
            with open("/proc/meminfo") as handle:
                for line in handle:
                    if line.startswith("MemAvailable:"):
                        available = int(line.split()[1]) * 1024
        except OSError:
            pass
    limit = _cgroup_headroom()
    candidates = [v for v in (available, limit) if v is not None]
    return min(candidates) if candidates else 4 * GIB


def _cgroup_headroom() -> int | None:
    """Limit minus usage of the cgroup (v2) this process runs in, if it has a limit."""
    try:
        with open("/sys/fs/cgroup/memory.max") as handle:
            limit = handle.read().strip()
        with open("/sys/fs/cgroup/memory.current") as handle:
            usage = int(handle.read().strip())
    except (OSError, ValueError):
        return None
    if limit == "max":
        return None
    return max(0, int(limit) - usage)


def in_memory_bytes(n_features: int, n_samples: int) -> int:
    """Peak memory of the in-memory engine on a matrix of this size (a rough upper bound)."""
    return IN_MEMORY_COPIES * n_features * n_samples * 8 + n_features * 400


def choose_engine(path: str | None, n_samples: int, memory: int | None, *,
                  n_features: int | None = None, available: int | None = None,
                  streamable: bool = True) -> Engine:
    """``"in-memory"`` when the whole matrix is small and fits comfortably, else
    ``"streaming"``: in memory when the in-memory peak is at most :data:`IN_MEMORY_MOST` and
    within the budget (or half of the free memory).

    Parameters
    ----------
    path : str or None
        The matrix file; its size stands in for the number of values when ``n_features`` is
        not known (about 4 bytes per value on disk).
    n_samples : int
    memory : int or None
        The budget (``--memory``): in memory only if its peak fits in it. Without a budget, in
        memory when the peak fits in half of :func:`available_memory`.
    n_features : int, optional
    available : int, optional
        Free memory, for tests (default: measured).
    streamable : bool
        False when something needs the whole matrix at once (counts normalisation, voom,
        array weights, blocks): then always in memory.
    """
    if not streamable:
        return "in-memory"
    if n_features is None:
        if path is None or not os.path.exists(path):
            return "in-memory"
        n_features = max(1, os.path.getsize(path) // (4 * max(1, n_samples)))
    peak = in_memory_bytes(n_features, n_samples)
    limit = memory if memory is not None else (available or available_memory()) // 2
    return "in-memory" if peak <= min(limit, IN_MEMORY_MOST) else "streaming"


@dataclass(frozen=True)
class StreamingPlan:
    """Sizes for one streamed run; see the module notes for the memory model.

    Attributes
    ----------
    budget : int
        Bytes the run may use (not counting the interpreter).
    block_rows : int
        Rows per block read from the source and fitted.
    pass_rows : int
        Rows per block in the passes over the stored summaries (moderation, table).
    n_workers : int
        Threads fitting blocks; one more thread reads ahead.
    prefetch : int
        Blocks read ahead of the fitting threads.
    spill : bool
        Whether per-feature summaries go to files (else they stay in memory).
    per_feature_bytes : int
        Memory of the global steps, n_features x bytes per feature.
    parallel_reads : bool
        The workers read their blocks (whole stored blocks); else one thread reads them all.
    """

    budget: int
    block_rows: int
    pass_rows: int
    n_workers: int
    prefetch: int
    spill: bool
    per_feature_bytes: int
    parallel_reads: bool = True

    def describe(self) -> dict[str, object]:
        """For the run record."""
        return {"memory_budget": format_bytes(self.budget), "block_rows": self.block_rows,
                "pass_rows": self.pass_rows, "workers": self.n_workers,
                "parallel_reads": self.parallel_reads,
                "spill": "disk" if self.spill else "memory"}


def plan_streaming(n_features: int, n_samples: int, n_coefficients: int, *, itemsize: int = 8,
                   memory: int | None = None, natural_block_rows: int = 1,
                   n_jobs: int | None = None, block_rows: int | None = None,
                   weights_matrix: bool = False, trend: bool = False, robust: bool = False,
                   spill: bool | None = None, available: int | None = None) -> StreamingPlan:
    """Choose block sizes, threads and where the summaries go, within a memory budget.

    Parameters
    ----------
    n_features, n_samples, n_coefficients : int
    itemsize : int
        Bytes per value as read (4 for float32).
    memory : int, optional
        The budget; default a quarter of the free memory, between 256 MiB and 1 GiB.
    natural_block_rows : int
        The storage's block: blocks are rounded to a multiple of it when it is smaller.
    n_jobs : int, optional
        Fitting threads (default: every core).
    block_rows : int, optional
        Force the rows per block, in every pass (tests: results must not depend on it).
    weights_matrix : bool
        A weights matrix is read alongside the data (8 bytes per value more).
    trend, robust : bool
        Options that make the prior estimate need more memory per feature.
    spill : bool, optional
        Force spilling to files (True) or keeping summaries in memory (False).
    available : int, optional
        Free memory, for tests.

    Raises
    ------
    InputError
        When the budget cannot hold the per-feature vectors and a minimal block, naming the
        smallest budget that would do.
    """
    if memory is None:
        free = available if available is not None else available_memory()
        memory = min(max(free // 4, DEFAULT_BUDGET_RANGE[0]), DEFAULT_BUDGET_RANGE[1])
    n_workers = max(1, min(n_jobs or cpu_count(), cpu_count() * 4))
    prefetch = 1
    in_flight = n_workers + prefetch + 1
    row_bytes = n_samples * (itemsize + (8 if weights_matrix else 0))
    # A fitting thread's temporaries grow with its block up to WORKER_BYTES (sub-blocks).
    worker_row_bytes = n_samples * WORKER_BYTES_PER_VALUE

    def blocks_bytes(rows: int) -> int:
        return in_flight * rows * row_bytes + n_workers * min(WORKER_BYTES,
                                                              rows * worker_row_bytes)

    # Blocks cut from larger stored blocks (Parquet row groups, Zarr chunks) are read by one
    # thread, which keeps its last stored blocks decoded; whole stored blocks are handed over.
    # A stored block holds at most the whole matrix (a contiguous .h5ad X is one block).
    reader_rows = min(READER_CACHED_BLOCKS * natural_block_rows, n_features) if (
        natural_block_rows > 1) else 0
    reader_bytes = reader_rows * row_bytes
    per_feature = PER_FEATURE_BYTES[(bool(trend), bool(robust))]
    global_bytes = n_features * per_feature + reader_bytes
    smallest = min(MIN_BLOCK_ROWS, n_features)
    if global_bytes + blocks_bytes(smallest) > memory:
        needed = global_bytes + blocks_bytes(max(smallest, 4096)) + 16 * MIB
        reader = (f", and the reader keeps up to {READER_CACHED_BLOCKS} stored blocks of "
                  f"{natural_block_rows:,} rows decoded ({format_bytes(reader_bytes)})"
                  if reader_bytes else "")
        raise InputError(
            f"--memory {format_bytes(memory)} is too small for {n_features:,} features x "
            f"{n_samples} samples: the steps over all features (the prior, the p-value "
            f"adjustment) hold {per_feature} bytes per feature "
            f"({format_bytes(n_features * per_feature)}){reader}, before any block of rows is "
            f"read. Give --memory {math.ceil(needed / MIB)}M or more."
        )
    summary_width = 2 * n_coefficients + 5 + 8
    stored = n_features * (summary_width * 8 + ID_BYTES)
    if spill is None:
        spill = global_bytes + stored + blocks_bytes(min(1024, n_features)) > memory
    block_budget = memory - global_bytes - (0 if spill else stored)
    forced_rows = block_rows is not None
    if block_rows is None:
        rows = block_budget // (in_flight * row_bytes + n_workers * worker_row_bytes)
        if rows * worker_row_bytes > WORKER_BYTES:  # the threads' part has reached its cap
            rows = (block_budget - n_workers * WORKER_BYTES) // (in_flight * row_bytes)
        rows = min(max(rows, smallest), max(MIN_BLOCK_ROWS, MAX_BLOCK_BYTES // row_bytes))
        if natural_block_rows > 1:
            if natural_block_rows <= rows:
                rows = natural_block_rows  # handed over whole, read by the workers
            else:  # an equal share of a stored block: no block straddles two stored ones
                rows = -(-natural_block_rows // -(-natural_block_rows // max(1, rows)))
        block_rows = int(max(1, min(rows, n_features)))
    parallel_reads = natural_block_rows <= 1 or block_rows == natural_block_rows
    # A pass over the summaries holds ~40 float64 per row (fields read, table columns, temps).
    # Several chunks per pass, so that the threads share the work.
    pass_rows = int(max(1, min(n_features, max(4096, min(block_budget // 320, 1 << 18)))))
    if forced_rows:
        pass_rows = int(block_rows)  # tests: every pass in small blocks
    return StreamingPlan(budget=int(memory), block_rows=int(block_rows), pass_rows=pass_rows,
                         n_workers=n_workers, prefetch=prefetch, spill=bool(spill),
                         per_feature_bytes=PER_FEATURE_BYTES[(bool(trend), bool(robust))],
                         parallel_reads=bool(parallel_reads))
