#!/usr/bin/env python
"""FDR benchmark of manylm: qvalue, propTrueNull / convest and decideTests against R and pylimma.

Run from the repository root::

    python bench/bench_qvalue.py                  # every workload (about 2-3 minutes, mostly R)
    python bench/bench_qvalue.py --skip-r --skip-pylimma
    python bench/bench_qvalue.py --workloads qvalue_450k,decide_nestedF_20k

For every workload the inputs are generated with a fixed seed, then in the same run:

1. manylm: the timed call, best of N (default 3) after one warm-up, inputs already in memory.
2. R (when ``Rscript`` exists with qvalue and limma): the p-values (or the expression matrix and
   design) are written as raw little-endian float64 files and read with ``readBin`` (not timed);
   R times the same call with ``system.time`` (elapsed), best of N, and writes its results as
   raw float64, compared with manylm's.
3. pylimma (when importable), for the functions it has (``prop_true_null``, ``convest``,
   ``decide_tests``): best of N after one warm-up.

Workloads:

* ``qvalue_450k``: 450,000 p-values (80% uniform, 20% Beta(0.3, 8), every 1000th NaN; an EPIC
  array's worth), ``qvalue(p)`` (smoother pi0, q-values, local FDR) vs R ``qvalue(p)``.
* ``qvalue_bootstrap_450k``: the same with the bootstrap pi0.
* ``prop_true_null_450k``: ``prop_true_null`` with ``lfdr``, ``mean`` and ``hist`` (the NaN
  removed), each vs R ``propTrueNull`` and pylimma.
* ``convest_50k``: ``prop_true_null(method="convest")`` on the first 50,000 of those p-values
  (R's ``convest`` loops over a 100-point grid per iteration: too slow in R for 450k).
* ``decide_nestedF_20k`` / ``decide_hierarchical_20k``: 20,000 features x 60 samples, three
  groups of 20, design ``~ 0 + group``, three contrasts, eBayes (not timed), then
  ``decide_tests(method=...)`` vs R ``decideTests`` on R's own ``lmFit`` / ``contrasts.fit`` /
  ``eBayes`` of the same data, and pylimma's ``decide_tests`` on its own fit.

Results are printed as a table and written as JSON to ``bench/results/qvalue-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_common import (  # noqa: E402 - a sibling script, not a package
    CPU,
    RESULTS_DIR,
    fmt_ratio,
    fmt_s,
    log,
    r_packages_available,
    r_tags,
    run_metadata,
    run_rscript,
    wait_for_quiet,
    write_json,
)

SEED = 20241101
N_P = 450_000
N_CONVEST = 50_000
DECIDE_SHAPE = (20_000, 60)
R_BUDGET_S = 120.0

WORKLOADS = ["qvalue_450k", "qvalue_bootstrap_450k", "prop_true_null_450k", "convest_50k",
             "decide_nestedF_20k", "decide_hierarchical_20k"]

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]; kind <- args[2]; repeats <- as.integer(args[3]); budget <- as.numeric(args[4])
suppressPackageStartupMessages({library(qvalue); library(limma)})
read_f64 <- function(name, n) readBin(file.path(dir, name), "double", n = n, endian = "little")
write_f64 <- function(x, name) writeBin(as.double(x), file.path(dir, name), endian = "little")
time_it <- function(f) {
  times <- c(); spent <- 0
  for (i in seq_len(repeats)) {
    t <- system.time(out <- f())[["elapsed"]]
    times <- c(times, t); spent <- spent + t
    if (spent > budget) break
  }
  cat("TIME", paste(times, collapse = ","), "\n")
  out
}
if (kind %in% c("qvalue", "qvalue_bootstrap", "ptn", "convest")) {
  n <- as.integer(args[5])
  p <- read_f64("p.bin", n)
}
if (kind == "qvalue" || kind == "qvalue_bootstrap") {
  method <- if (kind == "qvalue") "smoother" else "bootstrap"
  q <- time_it(function() qvalue(p, pi0.method = method))
  write_f64(q$qvalues, "q.bin"); write_f64(q$lfdr, "lfdr.bin")
  cat("PI0", sprintf("%.17g", q$pi0), "\n")
} else if (kind == "ptn") {
  for (m in c("lfdr", "mean", "hist")) {
    cat("METHOD", m, "\n")
    v <- time_it(function() propTrueNull(p, method = m))
    cat("VALUE", sprintf("%.17g", v), "\n")
  }
} else if (kind == "convest") {
  v <- time_it(function() propTrueNull(p, method = "convest"))
  cat("VALUE", sprintf("%.17g", v), "\n")
} else {
  g <- as.integer(args[5]); ns <- as.integer(args[6]); method <- args[7]
  y <- matrix(read_f64("Y.bin", g * ns), nrow = g)
  group <- factor(rep(c("A", "B", "C"), each = ns / 3))
  design <- model.matrix(~ 0 + group)
  colnames(design) <- c("A", "B", "C")
  cm <- makeContrasts(BvA = B - A, CvA = C - A, CvB = C - B, levels = design)
  eb <- eBayes(contrasts.fit(lmFit(y, design), cm))
  d <- time_it(function() decideTests(eb, method = method))
  write_f64(unclass(d), "calls.bin")
}
"""


# ---------------------------------------------------------------------------------------- data


def make_p_values() -> np.ndarray:
    rng = np.random.default_rng(SEED)
    n_signal = N_P // 5
    p = np.concatenate([rng.uniform(size=N_P - n_signal), rng.beta(0.3, 8.0, size=n_signal)])
    rng.shuffle(p)
    p[::1000] = np.nan
    return p


def make_expression() -> tuple[np.ndarray, pd.DataFrame]:
    """Three groups of 20; 10% of features differ between groups by U(0.5, 1.5)."""
    rng = np.random.default_rng(SEED + 1)
    n_features, n_samples = DECIDE_SHAPE
    group = np.repeat(["A", "B", "C"], n_samples // 3)
    sd = np.sqrt(4 * 0.05 / rng.chisquare(4, n_features))
    y = 8 + rng.standard_normal((n_features, n_samples)) * sd[:, None]
    changed = rng.choice(n_features, n_features // 10, replace=False)
    for level in ("B", "C"):
        shift = rng.choice([-1, 0, 1], changed.size) * rng.uniform(0.5, 1.5, changed.size)
        y[np.ix_(changed, np.flatnonzero(group == level))] += shift[:, None]
    samples = pd.DataFrame({"group": group},
                           index=[f"s{i:02d}" for i in range(n_samples)])
    return y, samples


# ---------------------------------------------------------------------------------- timing


def best_of(call: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    result = call()  # warm-up
    runs = []
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        result = call()
        runs.append(time.perf_counter() - started)
    return min(runs), runs, result


def run_r(kind: str, files: dict[str, np.ndarray], extra: list[str], repeats: int
          ) -> tuple[list[list[float]], dict[str, list[str]], dict[str, np.ndarray]]:
    """Run the R side; returns the TIME lines, the other tagged lines and the output files."""
    with tempfile.TemporaryDirectory(prefix="manylm-bench-") as tmp:
        directory = Path(tmp)
        for name, array in files.items():
            array.astype("<f8").tofile(directory / name)
        stdout, _ = run_rscript(R_SCRIPT, directory, kind, repeats, R_BUDGET_S, *extra)
        tags = r_tags(stdout)
        times = [[float(v) for v in line.split(",")] for line in tags.pop("TIME", [])]
        outputs = {path.name: np.fromfile(path, dtype="<f8")
                   for path in directory.glob("*.bin") if path.name not in files}
    return times, tags, outputs


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return float("inf")
    finite = ~np.isnan(a)
    return float(np.max(np.abs(a[finite] - b[finite]))) if finite.any() else 0.0


# --------------------------------------------------------------------------------- workloads


def bench_qvalue(name: str, p: np.ndarray, args: argparse.Namespace) -> list[dict[str, Any]]:
    from manylm.inference import qvalue

    method = "bootstrap" if "bootstrap" in name else "smoother"
    wait_for_quiet(args.wait_quiet)
    monitor = CPU.start()
    seconds, runs, ours = best_of(lambda: qvalue(p, pi0_method=method), args.repeats)
    row: dict[str, Any] = {"workload": name, "size": f"{p.size:,} p-values",
                           "manylm_s": seconds, "manylm_runs": runs, "pi0": ours.pi0,
                           "other_cores": CPU.others(monitor)}
    if not args.skip_r:
        kind = "qvalue_bootstrap" if method == "bootstrap" else "qvalue"
        wait_for_quiet(args.wait_quiet)
        times, tags, outputs = run_r(kind, {"p.bin": p}, [str(p.size)], args.repeats)
        row.update(r_s=min(times[0]), r_runs=times[0], r_pi0=float(tags["PI0"][0]),
                   agreement=(f"pi0 diff {abs(ours.pi0 - float(tags['PI0'][0])):.1e}, "
                              f"q max diff {max_abs_diff(ours.q_values, outputs['q.bin']):.1e}, "
                              f"lfdr max diff {max_abs_diff(ours.lfdr, outputs['lfdr.bin']):.1e}"))
    return [row]


def bench_prop_true_null(name: str, p: np.ndarray, args: argparse.Namespace
                         ) -> list[dict[str, Any]]:
    from manylm.inference import prop_true_null

    observed = p[~np.isnan(p)]
    methods = ["convest"] if name.startswith("convest") else ["lfdr", "mean", "hist"]
    if name.startswith("convest"):
        observed = observed[:N_CONVEST]
    rows = []
    for method in methods:
        wait_for_quiet(args.wait_quiet)
        seconds, runs, value = best_of(lambda m=method: prop_true_null(observed, method=m),
                                       args.repeats)
        rows.append({"workload": f"{name}:{method}" if len(methods) > 1 else name,
                     "size": f"{observed.size:,} p-values", "manylm_s": seconds,
                     "manylm_runs": runs, "value": value})
    if not args.skip_r:
        kind = "convest" if name.startswith("convest") else "ptn"
        wait_for_quiet(args.wait_quiet)
        times, tags, _ = run_r(kind, {"p.bin": observed}, [str(observed.size)], args.repeats)
        for row, r_times, r_value in zip(rows, times, tags["VALUE"], strict=True):
            row.update(r_s=min(r_times), r_runs=r_times, r_value=float(r_value),
                       agreement=f"diff {abs(row['value'] - float(r_value)):.1e}")
    if not args.skip_pylimma:
        try:
            import pylimma
        except ImportError:
            return rows
        for row, method in zip(rows, methods, strict=True):
            seconds, runs, value = best_of(
                lambda m=method: pylimma.prop_true_null(observed, method=m), args.repeats)
            row.update(pylimma_s=seconds, pylimma_runs=runs,
                       pylimma_diff=abs(value - row["value"]))
    return rows


def bench_decide(name: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    import manylm

    method = "nestedF" if "nestedF" in name else "hierarchical"
    y, samples = make_expression()
    design = manylm.design_matrix("~ 0 + group", samples)
    # coefficients (A, B, C) x contrasts BvA = B - A, CvA = C - A, CvB = C - B
    contrast = np.array([[-1, -1, 0], [1, 0, -1], [0, 1, 1]], dtype=float)
    contrasts = pd.DataFrame(contrast, index=design.coefficient_names,
                             columns=["BvA", "CvA", "CvB"])
    result = manylm.ebayes(manylm.contrasts_fit(manylm.lm_fit(y, design), contrasts))
    wait_for_quiet(args.wait_quiet)
    seconds, runs, calls = best_of(lambda: result.decide_tests(method=method), args.repeats)
    ours = calls.to_numpy()
    row: dict[str, Any] = {"workload": name, "size": f"{y.shape[0]:,} x 3 contrasts",
                           "manylm_s": seconds, "manylm_runs": runs,
                           "n_calls": int(np.count_nonzero(ours))}
    if not args.skip_r:
        wait_for_quiet(args.wait_quiet)
        times, _, outputs = run_r("decide", {"Y.bin": y.T.copy()},
                                  [str(y.shape[0]), str(y.shape[1]), method], args.repeats)
        theirs = outputs["calls.bin"].reshape(ours.shape, order="F")
        row.update(r_s=min(times[0]), r_runs=times[0],
                   agreement=f"{int(np.sum(theirs != ours))} of {ours.size} calls differ")
    if not args.skip_pylimma:
        try:
            import pylimma
        except ImportError:
            return [row]
        matrix = np.asarray(design.matrix, dtype=float)
        fit = pylimma.e_bayes(pylimma.contrasts_fit(pylimma.lm_fit(y, matrix), contrast))
        seconds, runs, theirs = best_of(lambda: pylimma.decide_tests(fit, method=method),
                                        args.repeats)
        row.update(pylimma_s=seconds, pylimma_runs=runs,
                   pylimma_agreement=f"{int(np.sum(np.asarray(theirs) != ours))} calls differ")
    return [row]


# -------------------------------------------------------------------------------- reporting


def print_report(rows: list[dict[str, Any]]) -> None:
    header = (f"{'workload':<28} {'size':<24} {'manylm':>9} {'R':>9} {'pylimma':>9} "
              f"{'R/ours':>7} {'pyl/ours':>8}  agreement with R")
    print(header)
    print("-" * len(header))
    for row in rows:
        r_ratio = row["r_s"] / row["manylm_s"] if "r_s" in row else None
        py_ratio = row["pylimma_s"] / row["manylm_s"] if "pylimma_s" in row else None
        print(f"{row['workload']:<28} {row['size']:<24} {fmt_s(row['manylm_s']):>9} "
              f"{fmt_s(row.get('r_s')):>9} {fmt_s(row.get('pylimma_s')):>9} "
              f"{fmt_ratio(r_ratio):>7} {fmt_ratio(py_ratio):>8}  {row.get('agreement', '-')}")
        for key in ("pylimma_diff", "pylimma_agreement"):
            if key in row:
                print(f"{'':<28} pylimma vs manylm: {row[key]}")
        if row.get("other_cores") and row["other_cores"] > 0.2:
            print(f"{'':<28} warning: other processes used {row['other_cores']:.1f} cores")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-r", action="store_true")
    parser.add_argument("--skip-pylimma", action="store_true")
    parser.add_argument("--wait-quiet", type=float, default=10.0)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    chosen = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = sorted(set(chosen) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {WORKLOADS}")
    if not args.skip_r:
        available, reason = r_packages_available("qvalue", "limma")
        if not available:
            log(f"R qvalue and limma not available ({reason}): R skipped")
            args.skip_r = True
    p = make_p_values()
    rows: list[dict[str, Any]] = []
    for name in chosen:
        log(f"workload {name}")
        if name.startswith("qvalue"):
            rows += bench_qvalue(name, p, args)
        elif name.startswith(("prop_true_null", "convest")):
            rows += bench_prop_true_null(name, p, args)
        else:
            rows += bench_decide(name, args)
    print_report(rows)
    suffix = "" if chosen == WORKLOADS else "-partial"
    output = args.output or RESULTS_DIR / f"qvalue-{dt.date.today().isoformat()}{suffix}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    write_json(output, {"rows": rows, **run_metadata()})
    log(f"results written to {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
