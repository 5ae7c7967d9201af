#!/usr/bin/env python
"""Throughput of just reading and decoding a matrix by blocks: manylm's readers and peers.

Run from the repository root, after ``python bench/make_synthetic.py --features N``::

    python bench/bench_read.py                       # the 1M x 100 files
    python bench/bench_read.py --features 10000000   # the 10M x 100 files (4 GB each)
    python bench/bench_read.py --formats parquet --rows 5242 --skip-peers

For each format, every reader runs in a fresh child process (so its peak RSS is its own), once
(``--repeats`` for more), after its imports; the file is read from start to end in blocks of
``--rows`` rows (default: the file's own row group / chunk) and every block is materialised as a
features x samples array. Timed readers:

* manylm: ``open_feature_blocks(path).blocks(rows)`` (rows x samples, C-contiguous, with the
  range, ID and infinite-value checks), and ``blocks(rows, order="A")``, as the fit reads them
  (a Parquet row group's sample columns side by side in Fortran order: no interleave);
* pyarrow (Parquet): ``ParquetFile.read_row_group`` + ``numpy.stack(columns, axis=1)`` (the same
  rows x samples output), and the same without the transpose (columns only: the decoding floor);
* zarr (Zarr): ``values[a:b]`` and ``feature_ids[a:b]`` per chunk, and dask:
  ``dask.array.from_zarr(values).sum(axis=1).compute()`` (reads and reduces on every core);
* R (``arrow::read_parquet``) when ``Rscript`` and the arrow package are installed.

Printed per reader: wall and CPU seconds, GB/s and rows/s of decoded values, peak RSS, the ratio
to manylm, the CPU other processes used meanwhile (the machine is shared), and the one-read
memory bound (the decoded bytes at the machine's read bandwidth). Results are written as JSON to
``bench/results/read-<N>-<date>.json``. The page cache is not dropped: files written recently are
read from memory, which is what this benchmark means to measure (decoding, not the disk).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_core import (  # noqa: E402 - shared helpers of the core benchmark
    CPU,
    RESULTS_DIR,
    _finite,
    _json_default,
    measure_bandwidth,
    run_metadata,
)
from make_synthetic import DATA_DIR, size_label  # noqa: E402

PEERS = {"parquet": ["manylm_columns", "pyarrow_rows", "pyarrow_columns", "r_arrow"],
         "zarr": ["zarr_slices", "dask_sum"]}


# ------------------------------------------------------------------------- child: one reader


def read_manylm(path: str, rows: int, order: str = "C") -> tuple[int, int]:
    from manylm.io.block_sources import open_feature_blocks

    source = open_feature_blocks(path)
    rows = rows or source.natural_block_rows
    started = _start()
    n_rows = n_bytes = 0
    for block in source.blocks(rows, order=order):
        n_rows += block.values.shape[0]
        n_bytes += block.values.nbytes
    return _stop(started, n_rows, n_bytes)


def read_pyarrow(path: str, rows: int, transpose: bool) -> tuple[int, int]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    started = _start()
    n_rows = n_bytes = 0
    for group in range(parquet.num_row_groups):
        table = parquet.read_row_group(group)
        ids = table.column(0).to_numpy()
        columns = [table.column(k).to_numpy() for k in range(1, table.num_columns)]
        if transpose:
            values = np.stack(columns, axis=1)
            n_bytes += values.nbytes
        else:
            n_bytes += sum(c.nbytes for c in columns)
        n_rows += len(ids)
    return _stop(started, n_rows, n_bytes)


def read_zarr(path: str, rows: int) -> tuple[int, int]:
    import zarr

    group = zarr.open_group(path, mode="r")
    values, feature_ids = group["values"], group["feature_ids"]
    rows = rows or values.chunks[0]
    started = _start()
    n_rows = n_bytes = 0
    for first in range(0, values.shape[0], rows):
        block = values[first:first + rows]
        feature_ids[first:first + rows]
        n_rows += block.shape[0]
        n_bytes += block.nbytes
    return _stop(started, n_rows, n_bytes)


def read_dask(path: str, rows: int) -> tuple[int, int]:
    import dask.array as da

    values = da.from_zarr(path, component="values")
    started = _start()
    values.sum(axis=1).compute()
    return _stop(started, values.shape[0], values.nbytes)


_TIMES: dict[str, float] = {}


def _start() -> float:
    _TIMES["cpu"] = time.process_time()
    _TIMES["wall"] = time.perf_counter()
    return _TIMES["wall"]


def _stop(started: float, n_rows: int, n_bytes: int) -> tuple[int, int]:
    _TIMES["wall"] = time.perf_counter() - started
    _TIMES["cpu"] = time.process_time() - _TIMES["cpu"]
    return n_rows, n_bytes


def child(tool: str, path: str, rows: int) -> int:
    readers = {
        "manylm": lambda: read_manylm(path, rows),
        "manylm_columns": lambda: read_manylm(path, rows, order="A"),
        "pyarrow_rows": lambda: read_pyarrow(path, rows, transpose=True),
        "pyarrow_columns": lambda: read_pyarrow(path, rows, transpose=False),
        "zarr_slices": lambda: read_zarr(path, rows),
        "dask_sum": lambda: read_dask(path, rows),
    }
    n_rows, n_bytes = readers[tool]()
    print(json.dumps({"wall_s": _TIMES["wall"], "cpu_s": _TIMES["cpu"], "rows": n_rows,
                      "bytes": n_bytes, "peak_rss_bytes": peak_rss()}))
    return 0


def peak_rss() -> int:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited on exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ----------------------------------------------------------------------- parent: the report


def r_arrow_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    result = subprocess.run(["Rscript", "-e", "quit(status = !requireNamespace('arrow', "
                             "quietly = TRUE))"], capture_output=True, check=False)
    return result.returncode == 0


def run_r_arrow(path: Path) -> dict[str, Any]:
    script = (f"library(arrow); t <- system.time(x <- read_parquet('{path}', "
              f"as_data_frame = FALSE))[['elapsed']]; cat(t, nrow(x), '\\n')")
    result = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1:]}
    elapsed, n_rows = result.stdout.split()[:2]
    return {"wall_s": float(elapsed), "rows": int(n_rows)}


def run_child(tool: str, path: Path, rows: int) -> dict[str, Any]:
    started = CPU.start()
    result = subprocess.run([sys.executable, __file__, "--child", tool, str(path), str(rows)],
                            capture_output=True, text=True, check=False)
    others = CPU.others(started)
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["failed"])[-1]}
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    measured["others_cores"] = others
    return measured


def fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--formats", default="parquet,zarr")
    parser.add_argument("--rows", type=int, default=0,
                        help="rows per block (default: the file's row group / chunk)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per reader (best kept)")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--skip-bandwidth", action="store_true")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--child", nargs=3, metavar=("TOOL", "PATH", "ROWS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child[0], args.child[1], int(args.child[2]))

    stem = args.data_dir / f"synthetic_{size_label(args.features)}"
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    missing = [f for f in formats if not stem.with_suffix(f".{f}").exists()]
    if missing:
        print(f"error: {stem}.{{{','.join(missing)}}} not found; make them first: python "
              f"bench/make_synthetic.py --features {args.features}", file=sys.stderr)
        return 2
    bandwidth = None if args.skip_bandwidth else measure_bandwidth(1 << 30, repeats=3)
    r_arrow = not args.skip_peers and r_arrow_available()

    rows_out: list[dict[str, Any]] = []
    for f in formats:
        path = stem.with_suffix(f".{f}")
        tools = ["manylm"] + ([] if args.skip_peers else PEERS[f])
        for tool in tools:
            if tool == "r_arrow":
                row = run_r_arrow(path) if r_arrow else {"error": "R package arrow not "
                                                         "installed"}
            else:
                runs = [run_child(tool, path, args.rows) for _ in range(max(1, args.repeats))]
                good = [r for r in runs if "error" not in r]
                row = min(good, key=lambda r: r["wall_s"]) if good else runs[0]
            row.update(format=f, tool=tool, path=str(path))
            rows_out.append(row)
            print(f"  {f:8s} {tool:16s} done", file=sys.stderr, flush=True)

    print(f"workload: {args.features:,} features x 100 samples float32 ({stem}.*); blocks of "
          f"{args.rows or 'the stored'} rows; {max(1, args.repeats)} run(s) per reader, "
          f"warm page cache")
    header = (f"{'format':8s} {'reader':16s} {'wall s':>8s} {'cpu s':>7s} {'GB/s':>6s} "
              f"{'Mrows/s':>8s} {'peak RSS':>9s} {'x manylm':>8s} {'others':>6s} "
              f"{'bound s':>7s}")
    print(header)
    print("-" * len(header))
    for f in formats:
        ours = next((r for r in rows_out if r["format"] == f and r["tool"] == "manylm"), {})
        for row in (r for r in rows_out if r["format"] == f):
            if "error" in row:
                print(f"{f:8s} {row['tool']:16s} n/a: {row['error']}")
                continue
            wall = row["wall_s"]
            n_bytes = row.get("bytes", ours.get("bytes", 0))
            row["GBps"] = n_bytes / wall / 1e9 if n_bytes else None
            row["rows_per_s"] = row["rows"] / wall
            row["vs_manylm"] = wall / ours["wall_s"] if "wall_s" in ours else None
            row["bound_s"] = (n_bytes / bandwidth["bandwidth_Bps"]
                              if bandwidth and n_bytes else None)
            rss = row.get("peak_rss_bytes")
            print(f"{f:8s} {row['tool']:16s} {wall:8.2f} {fmt(row.get('cpu_s'), '7.2f')} "
                  f"{fmt(row['GBps'], '6.2f')} {row['rows_per_s'] / 1e6:8.2f} "
                  f"{fmt(rss / 2**20 if rss else None, '7.0f', ' MB'):>9s} "
                  f"{fmt(row['vs_manylm'], '8.2f')} {fmt(row.get('others_cores'), '6.2f')} "
                  f"{fmt(row['bound_s'], '7.2f')}")
    print("x manylm: the reader's wall time / manylm's (above 1: manylm faster). others: cores "
          "used by other processes meanwhile. bound s: the decoded bytes at the machine's read "
          "bandwidth" + (f" ({bandwidth['bandwidth_Bps'] / 1e9:.1f} GB/s)" if bandwidth else ""))

    date = dt.date.today().isoformat()
    output = args.output or RESULTS_DIR / f"read-{size_label(args.features)}-{date}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": "read", "date": date, "features": args.features,
               "rows_per_block": args.rows or "stored", "repeats": args.repeats,
               "bandwidth": bandwidth, "results": rows_out, **run_metadata()}
    output.write_text(json.dumps(_finite(payload), indent=2, default=_json_default))
    print(f"results written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
