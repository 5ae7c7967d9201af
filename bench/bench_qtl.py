#!/usr/bin/env python
"""QTL scan benchmark: manylm.qtl.scan against pymatrixeqtl and tensorQTL (CPU), same run.

Run from the repository root::

    python bench/bench_qtl.py                    # trans_20k (a few minutes, mostly the peers)
    python bench/bench_qtl.py --memory           # also memory_1m: 1e6 variants x 20,000
                                                 # phenotypes streamed (several minutes)
    python bench/bench_qtl.py --memory-only      # only memory_1m
    python bench/bench_qtl.py --skip-peers --variants 5000

Workload ``trans_20k`` (fixed seed): n = 445 samples, 26 covariates (N(0, 1)) plus the
intercept, 20,000 phenotypes (N(0, 1), the first 200 with an effect of 0.3 x dosage of
variant i), 20,000 variants (binomial(2, MAF), MAF ~ U(0.05, 0.5), hard calls). p threshold
1e-5, linear model, all pairs tested (4e8 tests).

* manylm, end to end: ``scan(genotypes.parquet, read_matrix(phenotypes.parquet), covariates,
  out=pairs.parquet)``: the genotypes are streamed from a Parquet file (written before timing),
  the phenotypes read inside the timed region, the passing pairs written to Parquet. Float64
  and float32, on 1 thread and on every core. tests/s per core = tests / (wall s x threads).
* pymatrixeqtl (pure-Python port of Matrix eQTL, numpy BLAS on every core):
  ``Matrix_eQTL_engine(..., pvOutputThreshold=1e-5, useModel=modelLINEAR)`` on in-memory
  matrices (no file reading timed), on ``--peer-variants`` variants (default 5,000) when it is
  slow, its rate extrapolated per test.
* tensorQTL (if importable; CPU torch, float32): ``trans.map_trans(..., pval_threshold=1e-5,
  maf_threshold=0)`` on in-memory DataFrames, torch on every core.

The BLAS products alone (the same tiles, one thread, no screening) are timed in the same run:
the scan's rate is also reported as a fraction of theirs, which a busy machine slows alike.

The pairs found are compared: manylm float64 vs float32 (must be identical), vs pymatrixeqtl
(max relative difference of p) and vs tensorQTL (float32, so ~1e-5).

``memory_1m``: 1,000,000 variants x 20,000 phenotypes, float32, every core, the genotypes
made block by block by a generator (nothing stored), in a child process whose peak resident
memory (VmHWM) is reported; the target is < 4 GB. It runs first, before the trans workload's
inputs exist.

Results go to ``bench/results/qtl-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_core import CPU, RESULTS_DIR, log, run_metadata, wait_for_quiet  # noqa: E402

from manylm.io.genotypes import GenotypeBlock, GenotypeReader  # noqa: E402

N_SAMPLES = 445
N_COVARIATES = 26
P_THRESHOLD = 1e-5
SEED = 20261121
TARGET_F64 = 4e7  # tests/s per core
TARGET_F32 = 8e7
MEMORY_TARGET_BYTES = 4 * 1024**3


# ---------------------------------------------------------------------------------------- data


def make_inputs(n_variants: int, n_phenotypes: int, seed: int = SEED
                ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Genotypes (variants x samples), phenotypes (phenotypes x samples), covariates."""
    rng = np.random.default_rng(seed)
    samples = [f"s{i:03d}" for i in range(N_SAMPLES)]
    maf = rng.uniform(0.05, 0.5, n_variants)
    genotypes = rng.binomial(2, maf[:, None], (n_variants, N_SAMPLES)).astype(np.float64)
    covariates = rng.standard_normal((N_SAMPLES, N_COVARIATES))
    phenotypes = rng.standard_normal((n_phenotypes, N_SAMPLES))
    n_true = min(200, n_variants, n_phenotypes)
    phenotypes[:n_true] += 0.3 * genotypes[:n_true]
    return (
        pd.DataFrame(genotypes, index=[f"v{i}" for i in range(n_variants)], columns=samples),
        pd.DataFrame(phenotypes, index=[f"p{i}" for i in range(n_phenotypes)], columns=samples),
        pd.DataFrame(covariates, index=samples, columns=[f"c{i}" for i in range(N_COVARIATES)]),
    )


def write_parquet(frame: pd.DataFrame, path: Path, id_name: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame.rename_axis(id_name).reset_index(), preserve_index=False)
    pq.write_table(table, path, row_group_size=4096, compression="none")


class SyntheticGenotypes(GenotypeReader):
    """A GenotypeReader that makes its blocks from a seed (nothing is stored)."""

    kind = "dosage"
    has_positions = False

    def __init__(self, n_variants: int, samples: Sequence[str], seed: int = SEED) -> None:
        self.path = f"<{n_variants:,} synthetic variants>"
        self.sample_ids = list(samples)
        self.n_variants = n_variants
        self.seed = seed

    def blocks(self, rows: int, samples: Sequence[str] | None = None
               ) -> Iterator[GenotypeBlock]:
        for start in range(0, self.n_variants, rows):
            stop = min(self.n_variants, start + rows)
            rng = np.random.default_rng([self.seed, start])
            maf = rng.uniform(0.05, 0.5, stop - start)
            values = rng.binomial(2, maf[:, None], (stop - start, len(self.sample_ids)))
            ids = np.array([f"v{i}" for i in range(start, stop)], dtype=object)
            yield GenotypeBlock(start, ids, values.astype(np.float64), self.sample_ids)


# ------------------------------------------------------------------------------------- runners


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _rates(tests: int, seconds: float, cpu_seconds: float, threads: int) -> dict[str, float]:
    """Per core from the wall time (the target's definition) and per CPU-second used
    (less sensitive to other processes on a shared machine)."""
    return {"seconds": seconds, "cpu_seconds": cpu_seconds,
            "tests_per_s_per_core": tests / (seconds * threads),
            "tests_per_cpu_s": tests / cpu_seconds if cpu_seconds > 0 else float("nan")}


def time_manylm(genotype_path: Path, phenotype_path: Path, covariates: pd.DataFrame,
                out: Path, dtype: str, threads: int) -> dict[str, Any]:
    from manylm.io import read_matrix
    from manylm.qtl import scan

    wait_for_quiet(10)
    started = CPU.start()
    cpu = _cpu_seconds()
    clock = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        phenotypes = read_matrix(phenotype_path)
        result = scan(str(genotype_path), phenotypes, covariates, p_threshold=P_THRESHOLD,
                      dtype=dtype, n_threads=threads, out=out)
    seconds = time.perf_counter() - clock
    cpu = _cpu_seconds() - cpu
    tests = result.n_tests["trans"]
    return {**_rates(tests, seconds, cpu, threads), "tests": tests, "threads": threads,
            "dtype": dtype, "written": result.n_written["trans"], "others_cpu": CPU.others(started)}


def time_pymatrixeqtl(genotypes: pd.DataFrame, phenotypes: pd.DataFrame,
                      covariates: pd.DataFrame) -> dict[str, Any] | None:
    try:
        import pymatrixeqtl as me
    except ImportError:
        return None
    snps = me.SlicedData().create_from_matrix(genotypes.to_numpy(), list(genotypes.index),
                                              list(genotypes.columns))
    gene = me.SlicedData().create_from_matrix(phenotypes.to_numpy(), list(phenotypes.index),
                                              list(phenotypes.columns))
    cvrt = me.SlicedData().create_from_matrix(covariates.to_numpy().T, list(covariates.columns),
                                              list(covariates.index))
    wait_for_quiet(10)
    started = CPU.start()
    cpu = _cpu_seconds()
    clock = time.perf_counter()
    result = me.Matrix_eQTL_engine(snps, gene, cvrt, output_file_name=None,
                                   pvOutputThreshold=P_THRESHOLD, useModel=me.modelLINEAR,
                                   verbose=False)
    seconds = time.perf_counter() - clock
    cpu = _cpu_seconds() - cpu
    tests = genotypes.shape[0] * phenotypes.shape[0]
    threads = os.cpu_count() or 1
    table = result.all.rename(columns={"snps": "variant", "gene": "phenotype",
                                       "pvalue": "p_value"})
    return {**_rates(tests, seconds, cpu, threads), "tests": tests, "threads": threads,
            "written": len(table),
            "others_cpu": CPU.others(started), "version": getattr(me, "__version__", "?"),
            "pairs": table[["variant", "phenotype", "p_value"]]}


def time_tensorqtl(genotypes: pd.DataFrame, phenotypes: pd.DataFrame,
                   covariates: pd.DataFrame) -> dict[str, Any] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import torch
            from tensorqtl import trans
    except Exception as error:  # any import failure means "not available"
        log(f"tensorQTL not available: {error}")
        return None
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    wait_for_quiet(10)
    started = CPU.start()
    cpu = _cpu_seconds()
    clock = time.perf_counter()
    pairs = trans.map_trans(genotypes, phenotypes, covariates, return_sparse=True,
                            pval_threshold=P_THRESHOLD, maf_threshold=0, batch_size=10_000,
                            verbose=False)
    seconds = time.perf_counter() - clock
    cpu = _cpu_seconds() - cpu
    tests = genotypes.shape[0] * phenotypes.shape[0]
    import tensorqtl

    table = pairs.rename(columns={"variant_id": "variant", "phenotype_id": "phenotype",
                                  "pval": "p_value"})
    return {**_rates(tests, seconds, cpu, threads), "tests": tests, "threads": threads,
            "written": len(table),
            "others_cpu": CPU.others(started), "version": tensorqtl.__version__,
            "torch": torch.__version__, "pairs": table[["variant", "phenotype", "p_value"]]}


def product_bound(n_variants: int, n_phenotypes: int, dtype: str) -> dict[str, Any]:
    """The BLAS products alone (same tiles as the scan, one thread): what the scan can reach
    on this machine at this moment; the scan's rate is reported as a fraction of it."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    genotypes = rng.standard_normal((1024, N_SAMPLES)).astype(dtype)
    phenotypes = rng.standard_normal((n_phenotypes, N_SAMPLES)).astype(dtype)
    blocks = max(1, min(8, n_variants // 1024))
    wait_for_quiet(10)
    with threadpool_limits(1, user_api="blas"):
        clock = time.perf_counter()
        for _ in range(blocks):
            for start in range(0, n_phenotypes, 2048):
                genotypes @ phenotypes[start:start + 2048].T
        seconds = time.perf_counter() - clock
    tests = blocks * 1024 * n_phenotypes
    return {"tests": tests, "seconds": seconds, "tests_per_s_per_core": tests / seconds}


def compare(ours: pd.DataFrame, theirs: pd.DataFrame) -> dict[str, Any]:
    a = ours.set_index(["variant", "phenotype"])["p_value"]
    b = theirs.set_index(["variant", "phenotype"])["p_value"].astype(float)
    common = a.index.intersection(b.index)
    rel = float(np.max(np.abs(a[common] / b[common] - 1))) if len(common) else None
    return {"ours": len(a), "theirs": len(b), "common": len(common),
            "max_rel_diff_p": rel}


def peak_rss_bytes() -> int:
    """This process's peak resident memory since it started (VmHWM).

    Not ``ru_maxrss``: Linux carries that over fork and exec, so a child started by a large
    parent would report the parent's size.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_memory(n_variants: int, n_phenotypes: int) -> dict[str, Any]:
    """The streamed workload in a child process (started before the large inputs exist)."""
    with tempfile.TemporaryDirectory(prefix="bench-qtl-mem-") as folder:
        log(f"memory workload: {n_variants:,} streamed variants x {n_phenotypes:,} phenotypes, "
            f"float32, {os.cpu_count()} threads ...")
        child = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(n_variants), str(n_phenotypes),
             str(Path(folder) / "pairs.parquet")], capture_output=True, text=True, check=True)
    memory = json.loads(child.stdout.strip().splitlines()[-1])
    memory["tests_per_s_per_core"] = memory["tests"] / (memory["seconds"] * memory["threads"])
    return memory


def memory_child(n_variants: int, n_phenotypes: int, out: str) -> None:
    """Run in a child process: scan the streamed genotypes; print JSON with time and RSS."""
    from manylm.qtl import scan

    rng = np.random.default_rng(SEED + 1)
    samples = [f"s{i:03d}" for i in range(N_SAMPLES)]
    phenotypes = pd.DataFrame(rng.standard_normal((n_phenotypes, N_SAMPLES)),
                              index=[f"p{i}" for i in range(n_phenotypes)], columns=samples)
    covariates = pd.DataFrame(rng.standard_normal((N_SAMPLES, N_COVARIATES)), index=samples)
    reader = SyntheticGenotypes(n_variants, samples)
    clock = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = scan(reader, phenotypes, covariates, p_threshold=P_THRESHOLD,
                      dtype="float32", out=out)
    seconds = time.perf_counter() - clock
    print(json.dumps({"seconds": seconds, "tests": result.n_tests["trans"],
                      "written": result.n_written["trans"], "peak_rss_bytes": peak_rss_bytes(),
                      "threads": os.cpu_count()}))


# ---------------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", type=int, default=20_000)
    parser.add_argument("--phenotypes", type=int, default=20_000)
    parser.add_argument("--peer-variants", type=int, default=5_000,
                        help="variants given to the peers (their rate is per test)")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--memory", action="store_true", help="also the 1e6-variant run")
    parser.add_argument("--memory-only", action="store_true", help="only the 1e6-variant run")
    parser.add_argument("--memory-variants", type=int, default=1_000_000)
    parser.add_argument("--memory-child", nargs=3, metavar=("V", "P", "OUT"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(int(args.memory_child[0]), int(args.memory_child[1]), args.memory_child[2])
        return 0
    n_cores = os.cpu_count() or 1
    memory = run_memory(args.memory_variants, args.phenotypes) if (
        args.memory or args.memory_only) else None
    if args.memory_only:
        assert memory is not None
        memory_results: dict[str, Any] = {"memory_1m": memory, **run_metadata()}
        path = Path(args.output) if args.output else RESULTS_DIR / (
            f"qtl-memory-{dt.date.today().isoformat()}.json")
        path.write_text(json.dumps(memory_results, indent=2, default=float) + "\n")
        verdict = "PASS" if memory["peak_rss_bytes"] < MEMORY_TARGET_BYTES else "MISS"
        print(f"memory_1m: {memory['tests']:,} tests in {memory['seconds']:.1f} s, peak RSS "
              f"{memory['peak_rss_bytes'] / 1024**3:.2f} GB (< 4 GB: {verdict})")
        log(f"results written to {path}")
        return 0
    results: dict[str, Any] = {"workload": {
        "n_samples": N_SAMPLES, "n_covariates": N_COVARIATES, "n_variants": args.variants,
        "n_phenotypes": args.phenotypes, "p_threshold": P_THRESHOLD, "model": "linear"}}
    log(f"trans workload: {args.variants:,} variants x {args.phenotypes:,} phenotypes, "
        f"n = {N_SAMPLES}, {N_COVARIATES} covariates + intercept, p <= {P_THRESHOLD:g}")
    genotypes, phenotypes, covariates = make_inputs(args.variants, args.phenotypes)
    with tempfile.TemporaryDirectory(prefix="bench-qtl-") as folder:
        genotype_path = Path(folder) / "genotypes.parquet"
        phenotype_path = Path(folder) / "phenotypes.parquet"
        write_parquet(genotypes, genotype_path, "variant")
        write_parquet(phenotypes, phenotype_path, "phenotype")
        ours: dict[str, Any] = {}
        tables: dict[str, pd.DataFrame] = {}
        bound: dict[str, Any] = {}
        for dtype in ("float64", "float32"):
            bound[dtype] = product_bound(args.variants, args.phenotypes, dtype)
            log(f"  BLAS products alone, {dtype}, 1 thread: "
                f"{bound[dtype]['tests_per_s_per_core']:.3g} tests/s")
            for threads in sorted({1, n_cores}):
                key = f"{dtype}_{threads}t"
                out = Path(folder) / f"pairs_{key}.parquet"
                ours[key] = time_manylm(genotype_path, phenotype_path, covariates, out, dtype,
                                        threads)
                tables[key] = pd.read_parquet(out)
                log(f"  manylm {key}: {ours[key]['seconds']:.2f} s, "
                    f"{ours[key]['tests_per_s_per_core']:.3g} tests/s/core")
        results["manylm"] = ours
        results["product_bound"] = bound
        f64, f32 = tables[f"float64_{n_cores}t"], tables[f"float32_{n_cores}t"]
        results["float32_vs_float64"] = compare(f32, f64)
        peers: dict[str, Any] = {}
        if not args.skip_peers:
            subset = genotypes.iloc[:args.peer_variants]
            reference = f64[f64["variant"].isin(subset.index)]
            for name, runner in (("pymatrixeqtl", time_pymatrixeqtl),
                                 ("tensorqtl", time_tensorqtl)):
                log(f"  {name} on {len(subset):,} variants ...")
                peer = runner(subset, phenotypes, covariates)
                if peer is None:
                    continue
                peer["agreement"] = compare(reference, peer.pop("pairs"))
                peers[name] = peer
                log(f"  {name}: {peer['seconds']:.2f} s, "
                    f"{peer['tests_per_s_per_core']:.3g} tests/s/core")
        results["peers"] = peers
    if memory is not None:
        results["memory_1m"] = memory
    report(results, n_cores)
    results.update(run_metadata())
    path = Path(args.output) if args.output else RESULTS_DIR / (
        f"qtl-{dt.date.today().isoformat()}"
        + ("" if args.variants == 20_000 and args.phenotypes == 20_000 else "-partial")
        + ".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=float) + "\n")
    log(f"results written to {path}")
    return 0


def report(results: dict[str, Any], n_cores: int) -> None:
    print(f"\nQTL trans scan, {results['workload']}")
    print(f"{'run':<26}{'seconds':>10}{'tests':>14}{'tests/s/core':>15}{'tests/CPU-s':>13}"
          f"{'written':>9}{'other CPU':>10}")
    rows = [(f"manylm {k}", v) for k, v in results["manylm"].items()]
    rows += [(name, v) for name, v in results["peers"].items()]
    for dtype, row in results.get("product_bound", {}).items():
        rows.append((f"BLAS products, {dtype}", {**row, "tests_per_cpu_s": float("nan"),
                                                 "written": 0}))
    for name, row in rows:
        others = row.get("others_cpu")
        print(f"{name:<26}{row['seconds']:>10.2f}{row['tests']:>14,}"
              f"{row['tests_per_s_per_core']:>15.3g}{row['tests_per_cpu_s']:>13.3g}"
              f"{row['written']:>9,}"
              f"{'' if others is None else f'{others:.2f}':>10}")
    best = {dtype: max(v["tests_per_s_per_core"] for k, v in results["manylm"].items()
                       if k.startswith(dtype)) for dtype in ("float64", "float32")}
    for name, peer in results["peers"].items():
        for dtype in ("float64", "float32"):
            ours = results["manylm"][f"{dtype}_{n_cores}t"]["tests_per_s_per_core"]
            print(f"ratio manylm {dtype} ({n_cores} threads) / {name}, per core: "
                  f"{ours / peer['tests_per_s_per_core']:.1f}x")
        print(f"agreement with {name}: {peer['agreement']}")
    print(f"float32 vs float64 pairs: {results['float32_vs_float64']}")
    for dtype, target in (("float64", TARGET_F64), ("float32", TARGET_F32)):
        verdict = "PASS" if best[dtype] >= target else "MISS"
        bound = results.get("product_bound", {}).get(dtype)
        share = f" ({best[dtype] / bound['tests_per_s_per_core']:.0%} of the BLAS products " \
            "alone in this run)" if bound else ""
        print(f"target {dtype} >= {target:.0e} tests/s/core: best {best[dtype]:.3g}{share}: "
              f"{verdict}")
    memory = results.get("memory_1m")
    if memory:
        verdict = "PASS" if memory["peak_rss_bytes"] < MEMORY_TARGET_BYTES else "MISS"
        print(f"memory_1m: {memory['tests']:,} tests in {memory['seconds']:.1f} s "
              f"({memory['tests_per_s_per_core']:.3g} tests/s/core), peak RSS "
              f"{memory['peak_rss_bytes'] / 1024**3:.2f} GB (< 4 GB: {verdict})")


if __name__ == "__main__":
    sys.exit(main())
