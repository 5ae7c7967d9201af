#!/usr/bin/env python
"""Core benchmark of manylm: lm_fit + ebayes + top_table against R limma and pylimma.

Run from the repository root::

    python bench/bench_core.py                 # every workload (about 5-10 minutes)
    python bench/bench_core.py --quick         # only the 20,000-feature workloads
    python bench/bench_core.py --skip-r --skip-pylimma --workloads dense_20k,weights_20k
    python bench/bench_core.py --profile       # also print a cProfile of one manylm run

For every workload the synthetic data are generated with a fixed seed, then in the same run:

1. manylm: ``lm_fit`` + ``ebayes`` + ``top_table`` (full table, sorted by p), best of 3 after one
   warm-up, with the data already in memory; the split between the three steps is recorded.
2. R limma (when ``Rscript`` exists and limma loads): the matrix (and weights) are written as raw
   little-endian float64 files and the design as TSV (manylm's design matrix, so both fit the
   same model); R reads them with ``readBin`` and times ``lmFit`` + ``eBayes`` + ``topTable(coef,
   number=Inf, sort.by="P")`` with ``system.time`` (elapsed), best of 3. R also writes t and p for
   the first 1000 features, compared with manylm's.
3. pylimma (when importable): the same pipeline, best of 3 after one warm-up (a single run when
   that one run takes more than 120 s).
4. The one-read memory bound: the machine's read bandwidth (best of single-thread ``np.add.reduce``
   and a multi-threaded sum over a 2 GB array) and ``bound_s = input bytes / bandwidth``; the
   fraction reported is ``bound_s / manylm_s``.

Results are printed as a table with the targets (PASS/MISS) and written as JSON to
``bench/results/core-<date>.json``.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# The helpers every script shares. The other scripts imported them from here before
# bench_common existed, and some still do: keep these names importable from bench_core.
from bench_common import (
    CPU,
    RESULTS_DIR,
    fmt_bytes,
    fmt_ratio,
    fmt_s,
    json_default,
    json_safe,
    log,
    max_rel_diff,
    measure_bandwidth,
    r_packages_available,
    r_tags,
    run_metadata,
    run_rscript,
    source_hash,
    wait_for_quiet,
    write_json,
)

_finite, _json_default = json_safe, json_default  # their former names here

N_SAMPLES = 100
FORMULA = "~ group + C(batch) + age"
COEF = "group[T.B]"
BASE_SEED = 20240601
N_CHECK = 1000  # features whose t and p are compared with R's

#: name -> (features, fraction of missing cells, full weights matrix?, seed offset)
WORKLOADS: dict[str, dict[str, Any]] = {
    "dense_20k": {"n_features": 20_000, "missing": 0.0, "weights": False, "seed": 1},
    "dense_450k": {"n_features": 450_000, "missing": 0.0, "weights": False, "seed": 2},
    "missing_20k": {"n_features": 20_000, "missing": 0.01, "weights": False, "seed": 3},
    "weights_20k": {"n_features": 20_000, "missing": 0.0, "weights": True, "seed": 4},
}
QUICK = ["dense_20k", "missing_20k", "weights_20k"]

#: Targets per workload: minimum speed-up over R, minimum fraction of the memory bound, and
#: never slower than pylimma (speed-up over pylimma >= 1) everywhere.
TARGETS: dict[str, dict[str, float]] = {
    "dense_20k": {"vs_r": 10.0, "vs_pylimma": 1.0},
    "dense_450k": {"vs_r": 25.0, "bound_fraction": 0.25, "vs_pylimma": 1.0},
    "missing_20k": {"vs_r": 30.0, "vs_pylimma": 1.0},
    "weights_20k": {"vs_r": 30.0, "vs_pylimma": 1.0},
}

PYLIMMA_SLOW_S = 120.0  # one pylimma run slower than this: report that single run
R_BUDGET_S = 120.0  # stop repeating R once this much time has been spent on one workload


# ---------------------------------------------------------------------------------------- data


def make_samples(rng: np.random.Generator) -> pd.DataFrame:
    """100 samples: group A/B (50 each), batch 1-4 (25 each), age uniform on [20, 80]."""
    group = np.repeat(["A", "B"], N_SAMPLES // 2)
    batch = np.tile([1, 2, 3, 4], N_SAMPLES // 4)  # 25 per batch, balanced across groups
    age = rng.uniform(20, 80, N_SAMPLES)
    index = pd.Index([f"s{i + 1:03d}" for i in range(N_SAMPLES)], name="sample")
    return pd.DataFrame({"group": group, "batch": batch, "age": age}, index=index)


def make_data(name: str) -> dict[str, Any]:
    """Synthetic features x samples data for a workload, from a fixed seed (:func:`simulate`)."""
    spec = WORKLOADS[name]
    return simulate(spec["n_features"], spec["seed"], missing=spec["missing"],
                    weights=spec["weights"])


def simulate(n_features: int, seed: int, *, missing: float = 0.0,
             weights: bool = False) -> dict[str, Any]:
    """``n_features`` x 100 data from the seed ``BASE_SEED + seed``.

    Y = 8 + noise, the noise variance of each feature drawn from a scaled inverse chi-square
    (d0 = 4, s0^2 = 0.05, limma's own model for the variances); 5% of the features get a true
    group effect of +-U(0.5, 2) on the B samples. Then a fraction ``missing`` of the cells is
    made NaN and, with ``weights``, a gamma(2, 0.5) weights matrix is drawn.
    """
    rng = np.random.default_rng(BASE_SEED + seed)
    samples = make_samples(rng)
    d0, s0_squared = 4.0, 0.05
    sd = np.sqrt(d0 * s0_squared / rng.chisquare(d0, n_features))
    y = rng.standard_normal((n_features, N_SAMPLES))
    y *= sd[:, None]
    y += 8.0
    true_rows = add_group_effect(rng, y, samples["group"].to_numpy() == "B")
    if missing > 0:
        n_missing = round(missing * y.size)
        cells = rng.choice(y.size, n_missing, replace=False)
        y.reshape(-1)[cells] = np.nan
    weight_matrix = rng.gamma(2.0, 0.5, y.shape) if weights else None
    return {"samples": samples, "y": y, "weights": weight_matrix, "true_rows": true_rows}


def add_group_effect(rng: np.random.Generator, y: np.ndarray,
                     in_group_b: np.ndarray) -> np.ndarray:
    """Add +-U(0.5, 2) to the B samples of 5% of the features (in place); their sorted rows."""
    n_features = y.shape[0]
    n_true = round(0.05 * n_features)
    true_rows = np.sort(rng.choice(n_features, n_true, replace=False))
    effect = rng.choice([-1.0, 1.0], n_true) * rng.uniform(0.5, 2.0, n_true)
    y[np.ix_(true_rows, np.flatnonzero(in_group_b))] += effect[:, None]
    return true_rows


# -------------------------------------------------------------------------------------- manylm


def manylm_once(y: np.ndarray, design: Any, weights: np.ndarray | None) -> tuple[dict, Any, Any]:
    import manylm

    t0 = time.perf_counter()
    fit = manylm.lm_fit(y, design, weights=weights)
    t1 = time.perf_counter()
    eb = manylm.ebayes(fit)
    t2 = time.perf_counter()
    table = eb.top_table(COEF, sort_by="p")
    t3 = time.perf_counter()
    times = {"total": t3 - t0, "lm_fit": t1 - t0, "ebayes": t2 - t1, "top_table": t3 - t2}
    return times, eb, table


def bench_manylm(y: np.ndarray, design: Any, weights: np.ndarray | None,
                 repeats: int = 3) -> dict[str, Any]:
    times, eb, table = manylm_once(y, design, weights)  # warm-up
    coef_index = eb.coefficient_names.index(COEF)
    check = {
        "t": eb.t[:N_CHECK, coef_index].copy(),
        "p": eb.p_value[:N_CHECK, coef_index].copy(),
        "t_all": eb.t[:, coef_index].copy(),
        "s2_prior": float(np.median(np.asarray(eb.s2_prior))),
        "df_prior": float(np.median(np.asarray(eb.df_prior))),
        "n_rows": len(table),
        # 0-based positions of the top 5 rows (whatever the feature IDs of a bare array are).
        "top": [int(i) for i in eb.feature_ids.get_indexer(table.index[:5])],
    }
    warmup = times["total"]
    del eb, table
    runs = []
    for _ in range(repeats):
        gc.collect()
        times, eb, table = manylm_once(y, design, weights)
        runs.append(times)
        del eb, table
    gc.collect()
    best = min(runs, key=lambda r: r["total"])
    return {"seconds": best["total"], "split": best, "runs": [r["total"] for r in runs],
            "warmup_s": warmup, "check": check}


def profile_manylm(y: np.ndarray, design: Any, weights: np.ndarray | None, top: int = 25) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    manylm_once(y, design, weights)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
    stats.print_stats(top)
    out.write("\n--- by own time ---\n")
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


# -------------------------------------------------------------------------------------- R limma

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]; G <- as.integer(args[2]); n <- as.integer(args[3])
has_w <- args[4] == "1"; coef <- as.integer(args[5]); reps <- as.integer(args[6])
budget <- as.numeric(args[7]); ncheck <- as.integer(args[8])
suppressPackageStartupMessages(library(limma))
read_matrix <- function(path) {
  con <- file(path, "rb")
  v <- readBin(con, what = "double", n = as.double(G) * n, size = 8, endian = "little")
  close(con)
  stopifnot(length(v) == as.double(G) * n)
  matrix(v, nrow = G, ncol = n)  # the file is column-major G x n
}
Y <- read_matrix(file.path(dir, "Y.bin"))
W <- if (has_w) read_matrix(file.path(dir, "W.bin")) else NULL
design <- as.matrix(read.delim(file.path(dir, "design.tsv"), check.names = FALSE))
cat(sprintf("LIMMA %s\n", as.character(packageVersion("limma"))))
cat(sprintf("DIM %d %d NA %d\n", nrow(Y), ncol(Y), sum(is.na(Y))))
spent <- 0
for (i in seq_len(reps)) {
  invisible(gc())
  st <- system.time({
    fit <- lmFit(Y, design, weights = W)
    fit <- eBayes(fit)
    tab <- topTable(fit, coef = coef, number = Inf, sort.by = "P")
  })
  cat(sprintf("TIME %.6f\n", st[["elapsed"]])); flush(stdout())
  spent <- spent + st[["elapsed"]]
  if (spent > budget) break
}
k <- min(ncheck, G)
writeLines(sprintf("%.17g", fit$t[1:k, coef]), file.path(dir, "t.txt"))
writeLines(sprintf("%.17g", fit$p.value[1:k, coef]), file.path(dir, "p.txt"))
cat(sprintf("PRIOR %.17g %.17g\n", median(fit$s2.prior), median(fit$df.prior)))
cat(sprintf("NROW %d\n", nrow(tab)))
cat(sprintf("TOP %s\n", paste(head(rownames(tab), 5), collapse = ",")))
"""


def r_available() -> tuple[bool, str]:
    """(True, limma's version) when R limma can be run, else (False, why not)."""
    return r_packages_available("limma")


def bench_r(y: np.ndarray, design: Any, weights: np.ndarray | None, repeats: int = 3
            ) -> dict[str, Any]:
    coef = design.coefficient_names.index(COEF) + 1
    with tempfile.TemporaryDirectory(prefix="manylm-bench-") as tmp:
        d = Path(tmp)
        # tofile writes in C order: y.T in C order is y in column-major order, which R's
        # matrix(v, nrow = G) reads back as G x n.
        y.T.astype("<f8", copy=False).tofile(d / "Y.bin")
        if weights is not None:
            weights.T.astype("<f8", copy=False).tofile(d / "W.bin")
        design.as_frame().to_csv(d / "design.tsv", sep="\t", index=False, float_format="%.17g")
        stdout, wall = run_rscript(R_SCRIPT, d, y.shape[0], y.shape[1],
                                   "1" if weights is not None else "0", coef, repeats,
                                   R_BUDGET_S, N_CHECK)
        tags = r_tags(stdout)
        times = [float(v) for v in tags.get("TIME", [])]
        info = {key: values[-1] for key, values in tags.items()}
        t_r = np.loadtxt(d / "t.txt")
        p_r = np.loadtxt(d / "p.txt")
    s2_prior, df_prior = (float(v) for v in info["PRIOR"].split())
    return {
        "seconds": min(times), "runs": times, "wall_incl_io_s": wall,
        "limma": info.get("LIMMA"), "dim": info.get("DIM"), "n_rows": int(info["NROW"]),
        "top": info["TOP"].split(","), "s2_prior": s2_prior, "df_prior": df_prior,
        "t": t_r, "p": p_r,
    }


# -------------------------------------------------------------------------------------- pylimma


def pylimma_once(y: np.ndarray, design: Any, weights: np.ndarray | None, coef_index: int
                 ) -> tuple[float, Any]:
    import pylimma

    t0 = time.perf_counter()
    fit = pylimma.lm_fit(y, design.matrix, weights=weights)
    fit = pylimma.e_bayes(fit)
    pylimma.top_table(fit, coef=coef_index, number=np.inf, sort_by="p")
    return time.perf_counter() - t0, fit


def bench_pylimma(y: np.ndarray, design: Any, weights: np.ndarray | None,
                  repeats: int = 3) -> dict[str, Any]:
    coef_index = design.coefficient_names.index(COEF)
    warmup, fit = pylimma_once(y, design, weights, coef_index)
    t_all = np.asarray(fit["t"])[:, coef_index].copy()
    del fit
    gc.collect()
    if warmup > PYLIMMA_SLOW_S:
        return {"seconds": warmup, "runs": [warmup], "warmup_s": warmup, "single_run": True,
                "note": f"one run took {warmup:.0f} s > {PYLIMMA_SLOW_S:.0f} s: single run",
                "t_all": t_all}
    runs = []
    for _ in range(repeats):
        gc.collect()
        seconds, fit = pylimma_once(y, design, weights, coef_index)
        runs.append(seconds)
        del fit
    gc.collect()
    return {"seconds": min(runs), "runs": runs, "warmup_s": warmup, "single_run": False,
            "t_all": t_all}


# ------------------------------------------------------------------------------------ reporting


def evaluate_targets(name: str, row: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target description, value, PASS/MISS/n/a) for one workload."""
    marks = []
    targets = TARGETS.get(name, {})
    if "vs_r" in targets:
        value = row.get("ratio_r")
        marks.append((f"{name}: >= {targets['vs_r']:.0f}x faster than R limma",
                      fmt_ratio(value),
                      "n/a" if value is None else ("PASS" if value >= targets["vs_r"] else "MISS")))
    if "bound_fraction" in targets:
        value = row.get("bound_fraction")
        marks.append((f"{name}: >= {targets['bound_fraction']:.0%} of the one-read memory bound",
                      "-" if value is None else f"{value:.1%}",
                      "n/a" if value is None else
                      ("PASS" if value >= targets["bound_fraction"] else "MISS")))
    if "vs_pylimma" in targets:
        value = row.get("ratio_pylimma")
        marks.append((f"{name}: never slower than pylimma", fmt_ratio(value),
                      "n/a" if value is None else
                      ("PASS" if value >= targets["vs_pylimma"] else "MISS")))
    return marks


def print_report(rows: list[dict[str, Any]], bandwidth: dict[str, Any]) -> list[dict[str, str]]:
    headers = ["workload", "shape", "bytes", "manylm s", "R limma s", "pylimma s", "R/manylm",
               "pylimma/manylm", "mem bound s", "frac of bound"]
    lines = []
    for row in rows:
        lines.append([
            row["workload"], f"{row['shape'][0]:,} x {row['shape'][1]}", fmt_bytes(row["bytes"]),
            fmt_s(row["manylm_s"]), fmt_s(row.get("r_s")),
            fmt_s(row.get("pylimma_s")) + ("*" if row.get("pylimma_single_run") else ""),
            fmt_ratio(row.get("ratio_r")), fmt_ratio(row.get("ratio_pylimma")),
            f"{row['bound_s']:.4f}", f"{row['bound_fraction']:.1%}",
        ])
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    sep = "-+-".join("-" * w for w in widths)
    print()
    print(f"Read bandwidth: {bandwidth['bandwidth_Bps'] / 1e9:.2f} GB/s (1 thread "
          f"{bandwidth['single_thread_GBps']:.2f} GB/s; threaded "
          + ", ".join(f"{k}: {v:.2f} GB/s" for k, v in bandwidth["threaded_GBps"].items())
          + f"; {bandwidth['array_bytes'] / 1024**3:.0f} GiB array; best of start/end "
          + "measurements: " + ", ".join(f"{v:.2f}" for v in bandwidth["measurements_GBps"])
          + " GB/s)")
    print()
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print(sep)
    for line in lines:
        print(" | ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)))
    if any(row.get("pylimma_single_run") for row in rows):
        print("  * pylimma: a single run (one run exceeded "
              f"{PYLIMMA_SLOW_S:.0f} s)")
    print("  bytes = input bytes read (Y, plus the weights matrix for weights_20k); "
          "mem bound s = bytes / read bandwidth; frac of bound = mem bound s / manylm s")

    print("\nmanylm split (best run): lm_fit / ebayes / top_table")
    for row in rows:
        s = row["manylm_split"]
        print(f"  {row['workload']:<12} {s['lm_fit']:.4f} / {s['ebayes']:.4f} / "
              f"{s['top_table']:.4f} s   (runs: "
              + ", ".join(f"{r:.4f}" for r in row["manylm_runs"]) + ")")

    print("\nCPU used by other processes while timing (cores; 0 = quiet machine): "
          "manylm / R / pylimma")
    noisy = False
    for row in rows:
        values = [row.get(f"others_cpu_during_{k}") for k in ("manylm", "r", "pylimma")]
        noisy = noisy or any(v is not None and v > 0.2 for v in values)
        print(f"  {row['workload']:<12} " + " / ".join("-" if v is None else f"{v:.2f}"
                                                      for v in values))
    if noisy:
        print("  WARNING: other processes used the CPU during timing; times are inflated and "
              "ratios less reliable. Re-run on a quiet machine.")

    print("\nAgreement")
    for row in rows:
        parts = []
        if "r_t_max_rel_diff" in row:
            parts.append(f"vs R (first {N_CHECK}): t max rel diff {row['r_t_max_rel_diff']:.2e}, "
                         f"p max rel diff {row['r_p_max_rel_diff']:.2e}, s2.prior rel diff "
                         f"{row['r_s2_prior_rel_diff']:.1e}, df.prior rel diff "
                         f"{row['r_df_prior_rel_diff']:.1e}, top-5 same: "
                         f"{row.get('r_top5_same', '?')}")
        if "pylimma_t_max_rel_diff" in row:
            parts.append(f"vs pylimma (all features): t max rel diff "
                         f"{row['pylimma_t_max_rel_diff']:.2e}")
        for note in row.get("notes", []):
            parts.append(note)
        print(f"  {row['workload']:<12} " + ("\n  " + " " * 13).join(parts or ["-"]))

    print("\nTargets")
    marks = []
    for row in rows:
        for desc, value, mark in evaluate_targets(row["workload"], row):
            marks.append({"target": desc, "value": value, "result": mark})
            print(f"  [{mark:>4}] {desc}: {value}")
    return marks


# ----------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the 20k workloads")
    parser.add_argument("--skip-r", action="store_true", help="do not run R limma")
    parser.add_argument("--skip-pylimma", action="store_true", help="do not run pylimma")
    parser.add_argument("--workloads", nargs="+", metavar="NAMES",
                        help=f"workloads to run (comma or space separated): {', '.join(WORKLOADS)}")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (default 3)")
    parser.add_argument("--wait-quiet", type=float, default=30.0, metavar="SECONDS",
                        help="before each timed section, wait up to this long for other "
                        "processes to leave the CPU idle (default 30; 0 to not wait)")
    parser.add_argument("--profile", action="store_true",
                        help="print a cProfile of one manylm run per workload")
    parser.add_argument("--output", type=Path, help="JSON output path "
                        "(default bench/results/core-<date>[-quick|-partial].json)")
    args = parser.parse_args(argv)

    if args.workloads:
        names = [n for item in args.workloads for n in item.split(",") if n]
        unknown = [n for n in names if n not in WORKLOADS]
        if unknown:
            parser.error(f"unknown workload(s): {', '.join(unknown)}; choose from "
                         f"{', '.join(WORKLOADS)}")
    else:
        names = QUICK if args.quick else list(WORKLOADS)

    import manylm

    run_r, r_reason = (False, "--skip-r") if args.skip_r else r_available()
    limma_version = r_reason if run_r else None
    if not run_r:
        log(f"R limma: skipped ({r_reason})")
    run_py, py_reason = False, "--skip-pylimma"
    pylimma_version = None
    if not args.skip_pylimma:
        try:
            import pylimma

            run_py, pylimma_version = True, getattr(pylimma, "__version__", "?")
        except ImportError as exc:
            py_reason = f"not importable: {exc}"
    if not run_py:
        log(f"pylimma: skipped ({py_reason})")

    log(f"manylm source sha256 {source_hash()[:12]}")
    log("Measuring read bandwidth ...")
    bandwidth = measure_bandwidth()
    log(f"  {bandwidth['bandwidth_Bps'] / 1e9:.2f} GB/s")

    rows: list[dict[str, Any]] = []
    profiles: dict[str, str] = {}
    for name in names:
        log(f"[{name}] generating data ...")
        data = make_data(name)
        y, weights = data["y"], data["weights"]
        design = manylm.design_matrix(FORMULA, data["samples"])
        n_bytes = y.nbytes + (weights.nbytes if weights is not None else 0)
        row: dict[str, Any] = {"workload": name, "shape": list(y.shape), "bytes": n_bytes,
                               "n_missing": int(np.isnan(y).sum()),
                               "weights": weights is not None, "notes": []}

        log(f"[{name}] manylm ...")
        wait_for_quiet(args.wait_quiet)
        started = CPU.start()
        m = bench_manylm(y, design, weights, args.repeats)
        row["others_cpu_during_manylm"] = CPU.others(started)
        row.update(manylm_s=m["seconds"], manylm_split=m["split"], manylm_runs=m["runs"],
                   manylm_warmup_s=m["warmup_s"])
        if m["check"]["n_rows"] != y.shape[0]:
            row["notes"].append(f"manylm top_table has {m['check']['n_rows']} rows, not "
                                f"{y.shape[0]}")
        log(f"[{name}] manylm {m['seconds']:.4f} s  split {m['split']}")
        if args.profile:
            profiles[name] = profile_manylm(y, design, weights)

        if run_r:
            log(f"[{name}] R limma ...")
            try:
                wait_for_quiet(args.wait_quiet)
                started = CPU.start()
                r = bench_r(y, design, weights, args.repeats)
                row["others_cpu_during_r"] = CPU.others(started)
                row.update(r_s=r["seconds"], r_runs=r["runs"], r_wall_incl_io_s=r["wall_incl_io_s"])
                row["r_t_max_rel_diff"] = max_rel_diff(m["check"]["t"], r["t"])
                row["r_p_max_rel_diff"] = max_rel_diff(m["check"]["p"], r["p"])
                row["r_s2_prior_rel_diff"] = abs(m["check"]["s2_prior"] - r["s2_prior"]) / abs(
                    r["s2_prior"])
                row["r_df_prior_rel_diff"] = abs(m["check"]["df_prior"] - r["df_prior"]) / abs(
                    r["df_prior"]) if np.isfinite(r["df_prior"]) else float(
                    m["check"]["df_prior"] != r["df_prior"])
                # R has no row names here: its top rows are named by 1-based position.
                row["r_top5_same"] = m["check"]["top"] == [int(s) - 1 for s in r["top"]]
                if r["n_rows"] != y.shape[0]:
                    row["notes"].append(f"R topTable has {r['n_rows']} rows")
                if row["r_t_max_rel_diff"] > 1e-6:
                    row["notes"].append("ANOMALY: t differs from R by more than 1e-6 (relative)")
                log(f"[{name}] R {r['seconds']:.3f} s  runs {r['runs']}")
            except Exception as exc:  # report and carry on
                row["notes"].append(f"R failed: {exc}")
                log(f"[{name}] R failed: {exc}")
        if run_py:
            log(f"[{name}] pylimma ...")
            try:
                wait_for_quiet(args.wait_quiet)
                started = CPU.start()
                p = bench_pylimma(y, design, weights, args.repeats)
                row["others_cpu_during_pylimma"] = CPU.others(started)
                row.update(pylimma_s=p["seconds"], pylimma_runs=p["runs"],
                           pylimma_warmup_s=p["warmup_s"], pylimma_single_run=p["single_run"])
                row["pylimma_t_max_rel_diff"] = max_rel_diff(m["check"]["t_all"], p["t_all"])
                if "note" in p:
                    row["notes"].append("pylimma: " + p["note"])
                log(f"[{name}] pylimma {p['seconds']:.3f} s  runs {p['runs']}")
            except Exception as exc:
                row["notes"].append(f"pylimma failed: {exc!r}")
                log(f"[{name}] pylimma failed: {exc!r}")

        row["bound_s"] = n_bytes / bandwidth["bandwidth_Bps"]
        row["bound_fraction"] = row["bound_s"] / row["manylm_s"]
        row["ratio_r"] = row["r_s"] / row["manylm_s"] if "r_s" in row else None
        row["ratio_pylimma"] = (row["pylimma_s"] / row["manylm_s"] if "pylimma_s" in row
                                else None)
        rows.append(row)
        del data, y, weights, m
        gc.collect()

    # The bandwidth of a shared machine varies from minute to minute: measure again at the end
    # and keep the better of the two (the bound is the best the machine can do).
    log("Measuring read bandwidth again ...")
    again = measure_bandwidth()
    log(f"  {again['bandwidth_Bps'] / 1e9:.2f} GB/s")
    bandwidth_runs = [bandwidth, again]
    bandwidth = max(bandwidth_runs, key=lambda b: b["bandwidth_Bps"])
    bandwidth = {**bandwidth,
                 "measurements_GBps": [b["bandwidth_Bps"] / 1e9 for b in bandwidth_runs]}
    for row in rows:
        row["bound_s"] = row["bytes"] / bandwidth["bandwidth_Bps"]
        row["bound_fraction"] = row["bound_s"] / row["manylm_s"]

    marks = print_report(rows, bandwidth)
    for name, text in profiles.items():
        print(f"\n===== cProfile: manylm on {name} =====")
        print(text)

    if args.output:
        out_path = args.output
    else:
        suffix = "" if names == list(WORKLOADS) else ("-quick" if names == QUICK else "-partial")
        out_path = RESULTS_DIR / f"core-{dt.date.today().isoformat()}{suffix}.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "core",
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        **run_metadata(),
        "r_limma": limma_version, "r_skipped": None if run_r else r_reason,
        "pylimma": pylimma_version, "pylimma_skipped": None if run_py else py_reason,
        "design": FORMULA, "coefficient": COEF, "n_samples": N_SAMPLES,
        "repeats": args.repeats, "bandwidth": bandwidth, "workloads": rows, "targets": marks,
    }
    write_json(out_path, result)
    print(f"\nResults written to {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
