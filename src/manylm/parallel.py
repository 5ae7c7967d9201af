"""One shared pool of worker threads for the vectorised kernels.

NumPy and SciPy release the GIL in their loops, so threads use every core without copying data.
Starting a pool costs about half a millisecond, which matters for small inputs, so one pool is
kept for the life of the process. Work submitted from inside a worker runs in that worker
(nested submission could otherwise deadlock a full pool).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["cpu_count", "parallel_map", "parallel_slices"]

T = TypeVar("T")
R = TypeVar("R")

_POOL: ThreadPoolExecutor | None = None
_LOCK = threading.Lock()
_IN_WORKER = threading.local()


def cpu_count() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(cpu_count(), thread_name_prefix="manylm",
                                       initializer=_mark_worker)
        return _POOL


def _mark_worker() -> None:
    _IN_WORKER.active = True


def parallel_map(function: Callable[[T], R], items: Iterable[T], *,
                 n_jobs: int | None = None) -> list[R]:
    """``[function(item) for item in items]``, on up to ``n_jobs`` threads (default: all)."""
    work = list(items)
    n_jobs = min(n_jobs or cpu_count(), len(work))
    if n_jobs <= 1 or getattr(_IN_WORKER, "active", False):
        return [function(item) for item in work]
    if n_jobs >= cpu_count():
        return list(_pool().map(function, work))
    with ThreadPoolExecutor(n_jobs) as pool:
        return list(pool.map(function, work))


def parallel_slices(function: Callable[[slice], object], n_items: int, *,
                    min_items: int = 40_000) -> None:
    """``function(part)`` for consecutive slices covering ``range(n_items)``, one per core.

    For element-wise kernels that release the GIL (NumPy, SciPy ufuncs, numba ``nogil``):
    vectors shorter than ``min_items`` per core run in one call on this thread.
    """
    workers = max(1, min(cpu_count(), n_items // max(1, min_items)))
    bounds = [n_items * i // workers for i in range(workers + 1)]
    parallel_map(function, [slice(bounds[i], bounds[i + 1]) for i in range(workers)])
