"""What a long run needs from its process: memory handed back (interruptions:
:mod:`manylm.interruptions`).

And the wall-clock and CPU time of each phase, for the run record and the benchmarks.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

__all__ = ["phase_timer", "release_freed_memory"]


@contextlib.contextmanager
def phase_timer(timings: dict[str, float], name: str) -> Iterator[None]:
    """Record a phase's wall time, and its CPU time (all threads) as ``<name>_cpu``."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    timings[name] = time.perf_counter() - wall
    timings[f"{name}_cpu"] = time.process_time() - cpu


def release_freed_memory() -> None:
    """Give memory freed by finished blocks back to the system, so the budget holds.

    glibc's malloc raises its mmap threshold as large blocks are freed, after which blocks of
    that size come from arenas that it keeps: fixing the threshold (once per process, at 32 MiB)
    maps every block of a block's size anew and unmaps it when freed. Arrow's allocator keeps
    what decoded blocks used until asked to release it. Both are best effort (other platforms:
    nothing).
    """
    global _MALLOC_TUNED
    if not _MALLOC_TUNED:
        _MALLOC_TUNED = True
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    with contextlib.suppress(Exception):
        import pyarrow as pa

        pa.default_memory_pool().release_unused()


_MALLOC_TUNED = False
_M_MMAP_THRESHOLD = -3
#: Blocks at least this large are mapped anew and unmapped when freed; smaller ones (the fit's
#: ~4 MB sub-blocks) are reused from malloc's arenas: measured, about a quarter less CPU time in
#: the fit (page faults) than with a 1 MiB threshold, for the same peak memory.
_MMAP_THRESHOLD = 32 * 1024 * 1024
