#!/usr/bin/env python
"""Streaming benchmark: manylm fit on matrices read from disk a block of rows at a time.

Run from the repository root::

    python bench/bench_streaming.py                       # every workload (~10-20 minutes)
    python bench/bench_streaming.py --workloads budget_2M,cores_450k
    python bench/bench_streaming.py --skip-r --keep-data

Workloads (data from ``bench/make_synthetic.py``, generated into ``bench/data/streaming/`` when
missing: float32 Parquet, ``Y = 8 + batch + noise``, 0.1% of the cells missing, design
``~ group + batch + age``, coefficient ``group[T.B]``, full table sorted by p):

* ``stream_10M``: 10,000,000 x 100 (4 GB), ``manylm fit`` with the default settings (the engine
  picks streaming), output TSV (and again with the table as Parquet). Measured: wall and CPU
  time, peak resident memory of the process tree, and the time of just reading and decoding the
  same file, in the same run, with the file in the page cache beforehand (read once, untimed),
  five ways:

  - ``read``: ``ParquetBlockSource.blocks`` (all samples) as rows x samples blocks (C order:
    the sample columns interleaved), in order: the baseline documented since the first
    version of this benchmark;
  - ``read_columns``: the same blocks as the engine now reads them (``order="A"``: each row
    group decoded from a memory map, its sample columns copied into a Fortran-ordered block,
    no interleave), in order;
  - ``read_threads``: those blocks read on every core at once (threads calling ``read``, as the
    fit's workers read them);
  - ``pyarrow_row_groups``: pyarrow's own decoding, ``ParquetFile.read_row_group`` of each row
    group in order (decoded columns, no matrix, no page checksums, read into buffers);
  - ``pyarrow``: pyarrow's streaming reader, ``ParquetFile.iter_batches`` (row-group-sized
    record batches), in order.

  Two rounds of the seven (five reads, TSV, Parquet); each one's best time is kept (the same
  statistic for reading and for the fits). Targets: peak < 2 GB; throughput >= 50% of reading,
  checked against ``read_columns``, the engine's own reading in order (the rows x samples
  reading counts an interleave the engine no longer does), for the TSV and the Parquet table;
  the ratio to every baseline is printed and recorded.
* ``scaling``: the first 1M, 2M, 4M and 8M rows of the same file through the streaming engine
  (``fit_streaming``, output TSV). Target: time linear in the number of features: the time per
  million features at 8M no more than 25% above that at 1M (a fixed start-up makes it fall,
  which is still linear); the least-squares line t = start-up + slope x N is printed too.
* ``budget_2M``: 2,000,000 x 50 with ``--memory 300M``. Target: peak < 800 MB.
* ``cores_450k``: the first 450,000 rows, streaming engine on every core vs pinned to one core
  (``sched_setaffinity``: the engine then plans one worker).
* ``peers_1M``: 1,000,000 x 100, the streaming engine, manylm's in-memory engine and R limma
  (``lmFit`` + ``eBayes`` + ``topTable``, timed in R with ``system.time``; R reads a raw float64
  copy, not timed) on the same data.

Each measured run is a fresh Python process (``python -c``); its peak resident memory is the
largest sum of the RSS of the process and its children, sampled every 20 ms with psutil. The
machine is shared: before each run the script waits (up to ``--wait-quiet`` seconds) for the
other processes to leave the CPU idle, the CPU they used during the run is reported (from
/proc/stat), and every workload runs once. Results go to ``bench/results/streaming-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_common import measure_new_memory  # noqa: E402 - shared helpers
from bench_core import CPU, log, run_metadata, wait_for_quiet  # noqa: E402 - shared helpers
from make_synthetic import size_label  # noqa: E402 - the generator's file names

DATA_DIR = HERE / "data" / "streaming"
RESULTS_DIR = HERE / "results"
FORMULA = "~ group + batch + age"
COEF = "group[T.B]"
WORKLOADS = ("stream_10M", "scaling", "budget_2M", "cores_450k", "peers_1M")
GB = 1e9

# One measured run, in a fresh process: spec (JSON) in argv[1], result (JSON) on the last line.
RUNNER = r"""
import json, os, sys, time
spec = json.loads(sys.argv[1])
if spec.get("cpus"):
    os.sched_setaffinity(0, spec["cpus"])
import numpy as np, pandas as pd
started = time.perf_counter()
out = {}
if spec["mode"] == "read":
    from manylm.io.block_sources import open_feature_blocks
    source = open_feature_blocks(spec["path"])
    rows = 0
    for block in source.blocks(source.natural_block_rows, stop=spec.get("rows"),
                               order=spec.get("order", "C")):
        rows += block.values.shape[0]
    out["rows"] = rows
elif spec["mode"] == "read-threads":  # the stored blocks on every core, as the fit reads them
    from concurrent.futures import ThreadPoolExecutor
    from manylm.io.block_sources import open_feature_blocks
    from manylm.parallel import cpu_count
    source = open_feature_blocks(spec["path"])
    step, n, order = source.natural_block_rows, source.n_features, spec.get("order", "C")
    with ThreadPoolExecutor(cpu_count()) as pool:
        out["rows"] = sum(pool.map(lambda first: source.read(first, min(n, first + step),
                                                             order=order).values.shape[0],
                                   range(0, n, step)))
elif spec["mode"] == "pyarrow":  # pyarrow's streaming reader: record batches, no matrix
    import pyarrow.parquet as pq
    parquet = pq.ParquetFile(spec["path"])
    size = max(parquet.metadata.row_group(k).num_rows
               for k in range(parquet.metadata.num_row_groups))
    out["rows"] = sum(batch.num_rows for batch in parquet.iter_batches(batch_size=size))
elif spec["mode"] == "pyarrow-row-groups":  # pyarrow's decoding of each row group, no matrix
    import pyarrow.parquet as pq
    parquet = pq.ParquetFile(spec["path"])
    out["rows"] = sum(parquet.read_row_group(k).num_rows
                      for k in range(parquet.metadata.num_row_groups))
elif spec["mode"] in ("cli", "in-memory"):
    from manylm.cli.fit_command import FitRequest, run_fit
    from manylm.cli.streaming_fit import parse_memory, run_streaming_fit
    request = FitRequest(expression=spec["path"], samples=spec["samples"], design=spec["formula"],
                         tests=[spec["coef"]], out=spec["out"], quiet=True)
    if spec["mode"] == "in-memory":
        run_fit(request)
    else:
        memory = parse_memory(spec["memory"]) if spec.get("memory") else None
        run_streaming_fit(request, memory=memory, dask=spec.get("dask"),
                          engine=spec.get("engine"))
    record = json.load(open(spec["out"] + ".run.json"))
    out["engine"] = record.get("engine", {"name": "in-memory"})
    out["timings"] = record["timings_seconds"]
else:  # "api": the streaming engine on the first rows of a file
    from manylm.engine.streaming import fit_streaming
    from manylm.io.block_sources import open_feature_blocks

    class FirstRows:
        def __init__(self, source, n):
            self.source, self.n_features = source, n
            self.path, self.sample_ids = source.path, source.sample_ids
            self.dtype, self.natural_block_rows = source.dtype, source.natural_block_rows
        def read(self, start, stop, samples=None, *, order="C"):
            return self.source.read(start, min(stop, self.n_features), samples, order=order)
        def blocks(self, rows, samples=None, start=0, stop=None, *, order="C"):
            stop = self.n_features if stop is None else min(stop, self.n_features)
            return self.source.blocks(rows, samples, start, stop, order=order)

    source = open_feature_blocks(spec["path"])
    samples = pd.read_csv(spec["samples"], sep="\t", index_col=0)
    result = fit_streaming(FirstRows(source, spec["rows"]), spec["formula"], samples=samples,
                           coef=spec["coef"], out=spec["out"])
    out["engine"], out["timings"] = result.engine, result.timings
out["seconds"] = time.perf_counter() - started
used = os.times()
out["cpu_s"] = used.user + used.system  # every thread of the process, start-up included
print(json.dumps(out))
"""

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]; G <- as.integer(args[2]); n <- as.integer(args[3]); coef <- args[4]
suppressPackageStartupMessages(library(limma))
con <- file(file.path(dir, "Y.bin"), "rb")
Y <- matrix(readBin(con, "double", n = as.double(G) * n, size = 8), nrow = G)
close(con)
design <- as.matrix(read.delim(file.path(dir, "design.tsv"), check.names = FALSE))
cat(sprintf("LIMMA %s\n", as.character(packageVersion("limma"))))
st <- system.time({
  fit <- eBayes(lmFit(Y, design))
  tab <- topTable(fit, coef = coef, number = Inf, sort.by = "P")
})
cat(sprintf("TIME %.6f\n", st[["elapsed"]]))
"""


class TreeMemory:
    """Peak resident memory of a process and all its children, sampled every 20 ms.

    Also the CPU time of the whole tree (``cpu``: the last reading of each process, children
    such as Dask workers included).
    """

    def __init__(self, pid: int) -> None:
        import psutil

        self.process = psutil.Process(pid)
        self.peak = 0
        self.cpu_by_pid: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                processes = [self.process, *self.process.children(recursive=True)]
                total = 0
                for process in processes:
                    try:
                        total += process.memory_info().rss
                        times = process.cpu_times()
                        self.cpu_by_pid[process.pid] = times.user + times.system
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
            except psutil.Error:
                return
            time.sleep(0.02)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak

    @property
    def cpu(self) -> float:
        return sum(self.cpu_by_pid.values())


#: Before each run, wait up to this many seconds for the other processes to quieten down.
WAIT_QUIET = [30.0]


def measure(spec: dict[str, Any], label: str, runner: str = RUNNER) -> dict[str, Any]:
    """Run one spec in a fresh process; its result, wall time, peak tree RSS and CPU noise."""
    if WAIT_QUIET[0] > 0:
        wait_for_quiet(WAIT_QUIET[0])
    log(f"  {label} ...")
    started = CPU.start()
    wall = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", runner, json.dumps(spec)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = TreeMemory(process.pid)
    stdout, stderr = process.communicate()
    peak = memory.stop()
    elapsed = time.perf_counter() - wall
    noise = CPU.others(started)
    if process.returncode != 0:
        raise RuntimeError(f"{label} failed ({process.returncode}):\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update({"wall_s": elapsed, "peak_rss_bytes": peak, "other_cpu_cores": noise,
                   "tree_cpu_s": memory.cpu})
    log(f"    {result['seconds']:.2f} s in the run ({elapsed:.2f} s with start-up), peak "
        f"{peak / GB:.2f} GB, other processes {noise if noise is None else round(noise, 2)} "
        "cores")
    return result


def ensure_data(features: int, samples: int, folder: Path) -> Path:
    """``synthetic_<N>.parquet`` in ``folder``, generated with make_synthetic.py if missing."""
    path = folder / f"synthetic_{size_label(features)}.parquet"
    if not path.exists():
        log(f"generating {path} ({features:,} x {samples}) ...")
        subprocess.run([sys.executable, str(HERE / "make_synthetic.py"), "--features",
                        str(features), "--samples", str(samples), "--formats", "parquet",
                        "--out-dir", str(folder)], check=True)
    return path


def samples_of(path: Path) -> str:
    return str(path.with_name(path.name.replace(".parquet", "_samples.tsv")))


def spec_for(path: Path, mode: str, out: Path, **extra: Any) -> dict[str, Any]:
    return {"mode": mode, "path": str(path), "samples": samples_of(path), "formula": FORMULA,
            "coef": COEF, "out": str(out), **extra}


def warm_page_cache(path: Path) -> None:
    """Read the file once, untimed: every measured run then reads it from memory (the first
    run would otherwise pay the disk, which makes the ratio depend on the run order)."""
    with open(path, "rb") as fh:
        while fh.read(64 << 20):
            pass


def warm_compiled_code(scratch: Path) -> None:
    """Fit and write a small table with each engine, untimed: numba compiles manylm's kernels
    on first use and caches them on disk, so no measured run pays that (a few seconds, once
    per install; a small file alone would only take the in-memory engine's)."""
    path = ensure_data(50_000, 100, scratch)
    log("[warm-up: compiling the kernels into numba's cache]")
    for engine in ("in-memory", "streaming"):
        for suffix in ("tsv", "parquet"):
            measure(spec_for(path, "cli", scratch / f"warm.{suffix}", engine=engine),
                    f"50,000 rows, {engine} engine, {suffix} table")


#: The reading baselines of ``stream_10M``: key, spec, label (see the module docstring).
READ_BASELINES = (
    ("read", {"mode": "read"}, "read and decode only, rows x samples blocks"),
    ("read_columns", {"mode": "read", "order": "A"},
     "read and decode only, blocks as the engine reads them (by column)"),
    ("read_threads", {"mode": "read-threads", "order": "A"},
     "read and decode only, blocks by column on every core"),
    ("pyarrow_row_groups", {"mode": "pyarrow-row-groups"},
     "read and decode only, pyarrow's row groups"),
    ("pyarrow", {"mode": "pyarrow"}, "read and decode only, pyarrow's record batches"),
)


def stream_10m(scratch: Path) -> dict[str, Any]:
    path = ensure_data(10_000_000, 100, DATA_DIR)
    warm_page_cache(path)
    # Each configuration twice, in two rounds, and the best of each: the same statistic for
    # reading and for the fits (this machine's times drift by 10-20% over minutes).
    rounds = []
    for name in ("", ", again"):
        one = {key: measure({**spec, "path": str(path)}, f"{label}{name}")
               for key, spec, label in READ_BASELINES}
        one["tsv"] = measure(spec_for(path, "cli", scratch / "stream_10M.tsv"),
                             f"manylm fit (defaults){name}")
        one["parquet"] = measure(spec_for(path, "cli", scratch / "stream_10M.parquet"),
                                 f"manylm fit (defaults), table as Parquet{name}")
        rounds.append(one)
    best = {key: min((r[key] for r in rounds), key=lambda result: result["seconds"])
            for key in rounds[0]}
    run, parquet = best["tsv"], best["parquet"]
    ratios = {f"{table}_vs_{key}": best[key]["seconds"] / best[table]["seconds"]
              for table in ("tsv", "parquet") for key, _, _ in READ_BASELINES}
    for key, _, label in READ_BASELINES:
        log(f"  vs {label} ({best[key]['seconds']:.2f} s): TSV table "
            f"{ratios[f'tsv_vs_{key}']:.1%}, Parquet table {ratios[f'parquet_vs_{key}']:.1%}")
    return {"workload": "10,000,000 x 100 float32 Parquet, manylm fit with default settings",
            "rounds": rounds, **{key: best[key] for key, _, _ in READ_BASELINES},
            "fit": run, "fit_parquet_out": parquet,
            "throughput_vs_read": ratios["tsv_vs_read_columns"],
            "throughput_vs_read_parquet_out": ratios["parquet_vs_read_columns"],
            "throughput_ratios": ratios,
            "cpu_ratio_vs_read": best["read_columns"]["cpu_s"] / run["cpu_s"],
            "targets": {"peak_rss_below_2GB": run["peak_rss_bytes"] < 2 * 1024**3,
                        "throughput_at_least_half_of_read (TSV table)":
                            ratios["tsv_vs_read_columns"] >= 0.5,
                        "throughput_at_least_half_of_read (Parquet table)":
                            ratios["parquet_vs_read_columns"] >= 0.5}}


def scaling(scratch: Path) -> dict[str, Any]:
    path = ensure_data(10_000_000, 100, DATA_DIR)
    runs = {}
    for millions in (1, 2, 4, 8):
        runs[f"{millions}M"] = measure(
            spec_for(path, "api", scratch / "scaling.tsv", rows=millions * 1_000_000),
            f"first {millions}M rows, streaming")
    per_million = {k: v["seconds"] / int(k[:-1]) for k, v in runs.items()}
    spread = per_million["8M"] / per_million["1M"]
    # t = start-up + slope x N: least squares over the four runs, and how far each run is off
    millions = np.array([int(k[:-1]) for k in runs], dtype=float)
    seconds = np.array([v["seconds"] for v in runs.values()])
    slope, intercept = np.polyfit(millions, seconds, 1)
    off = float(np.max(np.abs(seconds - (intercept + slope * millions)) / seconds))
    return {"workload": "first 1M, 2M, 4M, 8M rows of the 10M x 100 file, streaming engine",
            "runs": runs, "seconds_per_million": per_million, "ratio_8M_to_1M": spread,
            "linear_fit": {"startup_s": float(intercept), "s_per_million": float(slope),
                           "largest_relative_residual": off},
            # Growing faster than linearly would make the time per million rise with N; a
            # fixed start-up makes it fall, which is still linear (t = a + b N).
            "targets": {"not_above_linear_by_25_percent": spread <= 1.25}}


def budget_2m(scratch: Path) -> dict[str, Any]:
    path = ensure_data(2_000_000, 50, DATA_DIR / "s50")
    run = measure(spec_for(path, "cli", scratch / "budget_2M.tsv", memory="300M"),
                  "manylm fit --memory 300M")
    return {"workload": "2,000,000 x 50 float32 Parquet, manylm fit --memory 300M", "fit": run,
            "targets": {"peak_rss_below_800MB": run["peak_rss_bytes"] < 800 * 1024**2}}


def cores_450k(scratch: Path) -> dict[str, Any]:
    path = ensure_data(10_000_000, 100, DATA_DIR)
    every = measure(spec_for(path, "api", scratch / "cores.tsv", rows=450_000),
                    "450k rows, every core")
    one = measure(spec_for(path, "api", scratch / "cores.tsv", rows=450_000, cpus=[0]),
                  "450k rows, one core")
    return {"workload": "first 450,000 rows of the 10M x 100 file, streaming engine",
            "all_cores": every, "one_core": one,
            "speedup": one["seconds"] / every["seconds"], "cores": os.cpu_count()}


def peers_1m(scratch: Path, skip_r: bool) -> dict[str, Any]:
    path = ensure_data(1_000_000, 100, DATA_DIR)
    streamed = measure(spec_for(path, "cli", scratch / "peers.tsv", engine="streaming"),
                       "manylm streaming engine")
    memory = measure(spec_for(path, "in-memory", scratch / "peers.tsv"),
                     "manylm in-memory engine")
    result: dict[str, Any] = {"workload": "1,000,000 x 100 float32 Parquet, sorted table",
                              "streaming": streamed, "in_memory": memory, "r_limma": None}
    if not skip_r and shutil.which("Rscript"):
        result["r_limma"] = r_limma(path, scratch)
    return result


def r_limma(path: Path, scratch: Path) -> dict[str, Any] | None:
    import numpy as np
    import pandas as pd

    import manylm
    from manylm.io import read_matrix

    log("  R limma (writing a float64 copy for R, not timed) ...")
    expression = read_matrix(path, dtype=np.float64)
    sheet = pd.read_csv(samples_of(path), sep="\t", index_col=0)
    design = manylm.design_matrix(FORMULA, sheet.loc[list(expression.columns)])
    folder = scratch / "r"
    folder.mkdir(exist_ok=True)
    expression.to_numpy().T.tofile(folder / "Y.bin")  # column-major G x n for readBin
    design.as_frame().to_csv(folder / "design.tsv", sep="\t", index=False)
    g, n = expression.shape
    del expression
    script = folder / "limma.R"
    script.write_text(R_SCRIPT)
    started = CPU.start()
    process = subprocess.Popen(["Rscript", str(script), str(folder), str(g), str(n), COEF],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = TreeMemory(process.pid)
    stdout, stderr = process.communicate()
    peak = memory.stop()
    if process.returncode != 0:
        log(f"    R failed: {stderr[-500:]}")
        return None
    seconds = float(next(line.split()[1] for line in stdout.splitlines()
                         if line.startswith("TIME")))
    version = next(line.split()[1] for line in stdout.splitlines() if line.startswith("LIMMA"))
    log(f"    R limma {version}: {seconds:.1f} s (lmFit + eBayes + topTable), peak "
        f"{peak / GB:.2f} GB (with the matrix read)")
    return {"limma": version, "seconds": seconds, "peak_rss_bytes": peak,
            "other_cpu_cores": CPU.others(started)}


def print_summary(results: dict[str, Any]) -> None:
    print("\n== manylm streaming benchmark ==")
    if "stream_10M" in results:
        r = results["stream_10M"]
        print(f"stream_10M  {r['workload']}")
        reading = r["read_columns"]
        print(f"  read+decode only, as the engine reads {reading['seconds']:.1f} s "
              f"({reading['cpu_s']:.1f} CPU-s); manylm fit {r['fit']['seconds']:.1f} s "
              f"({r['fit']['cpu_s']:.1f} CPU-s); throughput {r['throughput_vs_read']:.1%} of "
              f"reading (CPU: {r['cpu_ratio_vs_read']:.0%}); peak RSS "
              f"{r['fit']['peak_rss_bytes'] / GB:.2f} GB; engine {r['fit'].get('engine')}")
        for key, _, label in READ_BASELINES:
            print(f"  vs {label} ({r[key]['seconds']:.1f} s): TSV "
                  f"{r['throughput_ratios'][f'tsv_vs_{key}']:.1%}, Parquet "
                  f"{r['throughput_ratios'][f'parquet_vs_{key}']:.1%}")
        print(f"  phases {r['fit'].get('timings')}")
        parquet = r["fit_parquet_out"]
        print(f"  with the table written as Parquet: {parquet['seconds']:.1f} s "
              f"({parquet['cpu_s']:.1f} CPU-s), throughput "
              f"{r['throughput_vs_read_parquet_out']:.1%} of reading; peak RSS "
              f"{parquet['peak_rss_bytes'] / GB:.2f} GB; phases {parquet.get('timings')}")
    if "scaling" in results:
        r = results["scaling"]
        times = ", ".join(f"{k} {v['seconds']:.1f} s" for k, v in r["runs"].items())
        per = ", ".join(f"{k} {v:.2f}" for k, v in r["seconds_per_million"].items())
        print(f"scaling     {times}; s per million features: {per}; 8M/1M "
              f"{r['ratio_8M_to_1M']:.2f}; least squares t = {r['linear_fit']['startup_s']:.2f} s "
              f"+ {r['linear_fit']['s_per_million']:.2f} s per million (largest residual "
              f"{r['linear_fit']['largest_relative_residual']:.0%})")
    if "budget_2M" in results:
        r = results["budget_2M"]
        print(f"budget_2M   {r['fit']['seconds']:.1f} s, peak RSS "
              f"{r['fit']['peak_rss_bytes'] / 1024**2:.0f} MiB, engine {r['fit'].get('engine')}")
    if "cores_450k" in results:
        r = results["cores_450k"]
        print(f"cores_450k  every core ({r['cores']}) {r['all_cores']['seconds']:.2f} s, one "
              f"core {r['one_core']['seconds']:.2f} s: {r['speedup']:.2f}x")
    if "peers_1M" in results:
        r = results["peers_1M"]
        line = (f"peers_1M    streaming {r['streaming']['seconds']:.1f} s (peak "
                f"{r['streaming']['peak_rss_bytes'] / GB:.2f} GB), in-memory "
                f"{r['in_memory']['seconds']:.1f} s (peak "
                f"{r['in_memory']['peak_rss_bytes'] / GB:.2f} GB)")
        if r.get("r_limma"):
            rl = r["r_limma"]
            line += (f", R limma {rl['seconds']:.1f} s without reading (peak "
                     f"{rl['peak_rss_bytes'] / GB:.2f} GB); R/streaming "
                     f"{rl['seconds'] / r['streaming']['seconds']:.1f}x")
        print(line)
    if "new_memory" in results:
        print("new memory  the first write of 1 GiB " + ", ".join(
            f"{m['first_write_s']:.2f} s (then {m['second_write_s']:.2f} s)"
            for m in results["new_memory"]) + " (at the start, at the end)")
    for name, r in results.items():
        if not isinstance(r, dict):
            continue
        for target, ok in (r.get("targets") or {}).items():
            print(f"target {name}: {target}: {'PASS' if ok else 'MISS'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help=f"comma-separated, from {', '.join(WORKLOADS)}")
    parser.add_argument("--skip-r", action="store_true", help="do not run R limma")
    parser.add_argument("--keep-data", action="store_true",
                        help="keep the generated matrices in bench/data/streaming")
    parser.add_argument("--wait-quiet", type=float, default=30.0, metavar="SECONDS",
                        help="before each run, wait up to this long for other processes to "
                        "leave the CPU idle (default 30; 0 to not wait)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    WAIT_QUIET[0] = args.wait_quiet
    chosen = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = set(chosen) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    log(f"free space in {DATA_DIR.parent}: {shutil.disk_usage(DATA_DIR.parent).free / GB:.0f} GB")
    results: dict[str, Any] = {}
    new_memory = [measure_new_memory()]
    log(f"new memory: the first write of 1 GiB {new_memory[0]['first_write_s']:.2f} s, the "
        f"second {new_memory[0]['second_write_s']:.2f} s")
    with tempfile.TemporaryDirectory(dir=DATA_DIR.parent, prefix="streaming-out-") as folder:
        scratch = Path(folder)
        warm_compiled_code(scratch)
        for name in chosen:
            log(f"[{name}]")
            if name == "stream_10M":
                results[name] = stream_10m(scratch)
            elif name == "scaling":
                results[name] = scaling(scratch)
            elif name == "budget_2M":
                results[name] = budget_2m(scratch)
            elif name == "cores_450k":
                results[name] = cores_450k(scratch)
            else:
                results[name] = peers_1m(scratch, args.skip_r)
            for leftover in scratch.iterdir():  # outputs are not kept
                if leftover.is_dir():
                    shutil.rmtree(leftover)
                else:
                    leftover.unlink()
    new_memory.append(measure_new_memory())
    results["new_memory"] = new_memory
    print_summary(results)
    if not args.keep_data:
        shutil.rmtree(DATA_DIR, ignore_errors=True)
    partial = "" if chosen == list(WORKLOADS) else "-partial"
    out_path = args.output or RESULTS_DIR / f"streaming-{dt.date.today().isoformat()}{partial}.json"
    out_path.write_text(json.dumps({**run_metadata(), "results": results}, indent=2,
                                   default=str) + "\n")
    log(f"results written to {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
