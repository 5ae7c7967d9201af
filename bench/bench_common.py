"""What every benchmark script shares: the machine's load and bandwidth, R, the results file.

Not a benchmark itself. The scripts import it as a sibling module (``sys.path`` holds ``bench/``
when they run); ``bench_core`` re-exports these names for the scripts that import them from
there.

* Load: :data:`CPU` measures how many cores other processes used while a section ran, and
  :func:`wait_for_quiet` waits for a quiet machine before one is timed.
* :func:`measure_bandwidth`: the memory read bandwidth, for the one-read bound.
* R: :func:`r_packages_available` before, :func:`run_rscript` and :func:`r_tags` to run a
  timing script and read the ``KEY value`` lines it prints.
* Results: :func:`run_metadata` (machine, versions, manylm's source) and :func:`write_json`.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"

R_CHECK_TIMEOUT_S = 120  # loading a Bioconductor package can be slow, but not this slow


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------- machine load


class CpuMonitor:
    """CPU time the rest of the machine used while a section ran (a shared machine is noisy).

    From /proc/stat (busy time of every core) minus this process's own CPU time and that of its
    waited-for children (R); the result is in cores: 0 means nothing else ran, 1 means another
    process kept one core busy throughout.
    """

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def _busy(self) -> float | None:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except OSError:
            return None
        values = [int(v) for v in fields]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        guest = sum(values[8:10]) if len(values) > 9 else 0  # already counted in user/nice
        return (sum(values) - idle - guest) / self.tick

    @staticmethod
    def _own() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def start(self) -> tuple[float | None, float, float]:
        return self._busy(), self._own(), time.perf_counter()

    def others(self, started: tuple[float | None, float, float]) -> float | None:
        busy0, own0, wall0 = started
        busy1, own1, wall1 = self._busy(), self._own(), time.perf_counter()
        if busy0 is None or busy1 is None or wall1 - wall0 <= 0:
            return None
        return max(0.0, ((busy1 - busy0) - (own1 - own0)) / (wall1 - wall0))


CPU = CpuMonitor()


def wait_for_quiet(max_wait: float, threshold: float = 0.15) -> float | None:
    """Wait (up to ``max_wait`` s) until other processes use less than ``threshold`` cores.

    Returns the last measured load of the other processes (cores), sampled over 1 s windows.
    """
    deadline = time.perf_counter() + max_wait
    level = None
    while True:
        started = CPU.start()
        time.sleep(1.0)
        level = CPU.others(started)
        if level is None or level < threshold or time.perf_counter() >= deadline:
            return level


def measure_bandwidth(n_bytes: int = 2 * 1024**3, repeats: int = 5) -> dict[str, Any]:
    """Read bandwidth (bytes/s) of summing a large float64 array: one thread, then all cores."""
    a = np.empty(n_bytes // 8)
    a.fill(1.0)  # touch every page
    single = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.add.reduce(a)
        single.append(time.perf_counter() - t0)
    threads_results: dict[int, float] = {}
    for n_threads in sorted({2, os.cpu_count() or 1}):
        if n_threads < 2:
            continue
        parts = np.array_split(a, n_threads)
        best = float("inf")
        with ThreadPoolExecutor(n_threads) as pool:
            for _ in range(repeats):
                t0 = time.perf_counter()
                list(pool.map(np.add.reduce, parts))
                best = min(best, time.perf_counter() - t0)
        threads_results[n_threads] = best
    del a
    gc.collect()
    best_time = min([min(single), *threads_results.values()])
    return {
        "array_bytes": n_bytes,
        "single_thread_s": min(single),
        "single_thread_GBps": n_bytes / min(single) / 1e9,
        "threaded_s": {str(k): v for k, v in threads_results.items()},
        "threaded_GBps": {str(k): n_bytes / v / 1e9 for k, v in threads_results.items()},
        "bandwidth_Bps": n_bytes / best_time,
    }


def measure_new_memory(n_bytes: int = 1024**3, pause_s: float = 5.0) -> dict[str, Any]:
    """What memory costs the first time: writing a new ``n_bytes`` array (every page faulted
    in) against writing it again, after ``pause_s`` seconds of rest (a virtual machine whose
    host takes back the guest's idle memory charges its first touch again after a pause).

    Returns the seconds of both writes and the first one's milliseconds per MiB. On this
    project's benchmark machines (2-core Firecracker VMs) the first write took 1.1-2.9 s per
    GiB, against 0.04-0.08 s for the second: a run that writes 1 GB of new memory (its spill
    files in the page cache, its table, its buffers) pays seconds that reading the input
    (through the page cache it already has) does not.
    """
    time.sleep(pause_s)
    t0 = time.perf_counter()
    a = np.empty(n_bytes // 8)
    a.fill(1.0)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    a.fill(2.0)
    again = time.perf_counter() - t0
    del a
    gc.collect()
    return {"bytes": n_bytes, "first_write_s": first, "second_write_s": again,
            "first_write_ms_per_MiB": first / (n_bytes / 2**20) * 1e3}


# ------------------------------------------------------------------------------------------ R


def r_packages_available(*packages: str) -> tuple[bool, str]:
    """Whether ``Rscript`` loads every one of ``packages``.

    Returns (True, the first package's version) or (False, why R cannot be run).
    """
    if shutil.which("Rscript") is None:
        return False, "Rscript not found"
    libraries = "; ".join(f"library({name})" for name in packages)
    try:
        out = subprocess.run(
            ["Rscript", "-e", f"suppressPackageStartupMessages({{{libraries}}}); "
             f'cat(as.character(packageVersion("{packages[0]}")))'],
            capture_output=True, text=True, timeout=R_CHECK_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"Rscript failed: {exc}"
    if out.returncode != 0:
        last = out.stderr.strip().splitlines()[-1:] or ["no message"]
        return False, f"R could not load {' and '.join(packages)}: {last[0]}"
    return True, out.stdout.strip()


def run_rscript(script: str, folder: Path, *args: object,
                timeout: float | None = None) -> tuple[str, float]:
    """Run ``script`` (saved as ``folder/bench.R``) as ``Rscript bench.R folder *args``.

    Returns R's standard output and the wall time of the whole process (start-up and reading
    included). Raises RuntimeError with the end of R's standard error when R fails, and
    ``subprocess.TimeoutExpired`` after ``timeout`` seconds.
    """
    path = folder / "bench.R"
    path.write_text(script)
    started = time.perf_counter()
    process = subprocess.run(["Rscript", str(path), str(folder), *map(str, args)],
                             capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"R failed ({process.returncode}): {process.stderr[-2000:]}")
    return process.stdout, wall


def r_tags(stdout: str) -> dict[str, list[str]]:
    """The ``KEY value`` lines an R timing script prints: every value of each key, in order."""
    tags: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        key, _, rest = line.strip().partition(" ")
        if key:
            tags.setdefault(key, []).append(rest.strip())
    return tags


# ------------------------------------------------------------------------------ comparison


def max_rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    if np.any(np.isnan(a) != np.isnan(b)):
        return float("inf")
    a, b = a[~both_nan], b[~both_nan]
    if a.size == 0:
        return 0.0
    scale = np.maximum(np.abs(b), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(a - b) / scale))


def fmt_bytes(n: float) -> str:
    for unit in ["B", "KB", "MB", "GB"]:
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3f}" if x < 100 else f"{x:.1f}"


def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}x"


# ------------------------------------------------------------------------------- results file


def run_metadata() -> dict[str, Any]:
    """The machine, library versions and manylm's source, for a results file."""
    import scipy

    import manylm

    return {
        "machine": {"platform": platform.platform(), "processor": _cpu_model(),
                    "cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__, "scipy": scipy.__version__,
                    "pandas": pd.__version__},
        "manylm": {"version": manylm.__version__, "source_sha256": source_hash(),
                   **git_info()},
    }


def source_hash() -> str:
    """SHA-256 of manylm's Python sources, to tell which code was measured."""
    import manylm

    digest = hashlib.sha256()
    root = Path(manylm.__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def git_info() -> dict[str, Any]:
    try:
        root = HERE.parent
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=root,
                                    capture_output=True, text=True).stdout.strip())
        return {"commit": commit, "src_dirty": dirty}
    except OSError:
        return {}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def json_safe(value: Any) -> Any:
    """NaN and infinities as strings, so the JSON is standard."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return str(float(value))
    return value


def json_default(value: Any) -> Any:
    """NumPy scalars and arrays as Python numbers and lists (``json.dumps(default=)``)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write a results file: standard JSON (see :func:`json_safe`), indented, one final newline."""
    path.write_text(json.dumps(json_safe(payload), indent=2, default=json_default) + "\n")
