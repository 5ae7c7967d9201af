#!/usr/bin/env python
"""Counts and blocks benchmark of manylm: voom, duplicate_correlation and blocked lm_fit vs R limma.

Run from the repository root::

    python bench/bench_counts.py                  # every workload (a few minutes, mostly R)
    python bench/bench_counts.py --skip-r         # manylm alone
    python bench/bench_counts.py --workloads voom_30k,blocked_fit_20k

For every workload the synthetic data are generated with a fixed seed, then in the same run:

1. manylm: the timed pipeline (below), best of N after one warm-up, data already in memory.
2. R limma (when ``Rscript`` exists and limma loads): the data are written as raw little-endian
   binary files (counts as int32, or float64 if they do not fit), the design (manylm's, so both
   fit the same model) as TSV and the blocks as text; R reads them with ``readBin`` (not timed)
   and times the same pipeline with ``system.time`` (elapsed), best of N.

Workloads:

* ``voom_30k``: 30,000 genes x 200 samples of negative-binomial counts, design ``~ group``.
  manylm ``voom`` + ``lm_fit(weights=)`` + ``ebayes`` + ``top_table`` (full, sorted by p) vs R
  ``voom`` + ``lmFit`` + ``eBayes`` + ``topTable(number=Inf, sort.by="P")``; agreement: max
  relative difference of t for the first 1000 genes.
* ``dupcor_20k``: 20,000 x 100 normal data, 25 blocks of 4 samples, design ``~ group``.
  manylm ``duplicate_correlation`` vs R ``duplicateCorrelation(block=)`` (R runs once: ~25 s).
* ``blocked_fit_20k``: the same data; ``lm_fit(block=, correlation=rho)`` + ``ebayes`` +
  ``top_table`` vs R ``lmFit(block=, correlation=)`` + ``eBayes`` + ``topTable``, both with
  manylm's consensus correlation.

Results are printed as a table with the targets (PASS/MISS) and written as JSON to
``bench/results/counts-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
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
    max_rel_diff,
    r_packages_available,
    r_tags,
    run_metadata,
    run_rscript,
    source_hash,
    wait_for_quiet,
    write_json,
)
from bench_core import add_group_effect  # noqa: E402

COEF = "group[T.B]"
FORMULA = "~ group"
BASE_SEED = 20240701
N_CHECK = 1000  # features whose t are compared with R's
R_BUDGET_S = 120.0  # stop repeating R once this much time has been spent on one workload

#: name -> description, shape, the manylm and R repeats (None: --repeats), target vs R.
WORKLOADS: dict[str, dict[str, Any]] = {
    "voom_30k": {"shape": (30_000, 200), "manylm_repeats": None, "r_repeats": None,
                 "vs_r": 10.0},
    "dupcor_20k": {"shape": (20_000, 100), "manylm_repeats": 5, "r_repeats": 1,
                   "vs_r": 50.0},
    "blocked_fit_20k": {"shape": (20_000, 100), "manylm_repeats": None, "r_repeats": None,
                        "vs_r": None},
}

# Block data: 25 blocks of 4 consecutive samples, group alternating A/B (2 + 2 per block).
N_BLOCK_SAMPLES, BLOCK_SIZE = 100, 4
TRUE_RHO = 0.3  # intra-block correlation of the simulated data


# ---------------------------------------------------------------------------------------- data


def make_counts() -> dict[str, Any]:
    """30,000 x 200 negative-binomial counts: gene means exp(N(3, 2)), library-size factors
    U(0.5, 2), NB size 1 / 0.2 (dispersion 0.2); group A/B, 100 each."""
    n_genes, n_samples = WORKLOADS["voom_30k"]["shape"]
    rng = np.random.default_rng(BASE_SEED + 1)
    gene_mean = np.exp(rng.normal(3.0, 2.0, n_genes))
    lib_factor = rng.uniform(0.5, 2.0, n_samples)
    mu = gene_mean[:, None] * lib_factor[None, :]
    size = 1.0 / 0.2
    counts = rng.negative_binomial(size, size / (size + mu))
    samples = pd.DataFrame(
        {"group": np.repeat(["A", "B"], n_samples // 2)},
        index=pd.Index([f"s{i + 1:03d}" for i in range(n_samples)], name="sample"))
    counts_df = pd.DataFrame(counts, index=[f"g{i + 1:05d}" for i in range(n_genes)],
                             columns=samples.index)
    return {"samples": samples, "counts": counts_df}


def make_blocks() -> dict[str, Any]:
    """20,000 x 100 normal data with an intra-block correlation of 0.3.

    Y = 8 + sd_g * (sqrt(rho) * block effect + sqrt(1 - rho) * noise), the variance sd_g^2 of
    each feature drawn from a scaled inverse chi-square (d0 = 4, s0^2 = 0.05); 5% of the
    features get a group effect of +-U(0.5, 2) on the B samples.
    """
    n_features, n_samples = WORKLOADS["dupcor_20k"]["shape"]
    rng = np.random.default_rng(BASE_SEED + 2)
    n_blocks = n_samples // BLOCK_SIZE
    block_index = np.repeat(np.arange(n_blocks), BLOCK_SIZE)
    blocks = np.array([f"p{b + 1:02d}" for b in block_index], dtype=object)
    samples = pd.DataFrame(
        {"group": np.tile(["A", "B"], n_samples // 2)},
        index=pd.Index([f"s{i + 1:03d}" for i in range(n_samples)], name="sample"))
    sd = np.sqrt(4.0 * 0.05 / rng.chisquare(4.0, n_features))
    block_effect = rng.standard_normal((n_features, n_blocks))[:, block_index]
    y = np.sqrt(TRUE_RHO) * block_effect + np.sqrt(1 - TRUE_RHO) * rng.standard_normal(
        (n_features, n_samples))
    y *= sd[:, None]
    y += 8.0
    add_group_effect(rng, y, samples["group"].to_numpy() == "B")
    return {"samples": samples, "y": y, "blocks": blocks}


# -------------------------------------------------------------------------------------- manylm


def voom_once(counts: pd.DataFrame, design: Any) -> tuple[dict[str, float], dict[str, Any]]:
    import manylm
    from manylm.counts import voom

    t0 = time.perf_counter()
    v = voom(counts, design)
    t1 = time.perf_counter()
    fit = manylm.lm_fit(v.expression, design, weights=v.weights)
    t2 = time.perf_counter()
    eb = manylm.ebayes(fit)
    table = eb.top_table(COEF)
    t3 = time.perf_counter()
    times = {"total": t3 - t0, "voom": t1 - t0, "lm_fit": t2 - t1, "ebayes+top_table": t3 - t2}
    return times, {"t": np.asarray(eb.t)[:N_CHECK, eb.coefficient_names.index(COEF)].copy(),
                   "n_rows": len(table), "top": [str(i) for i in table.index[:5]]}


def dupcor_once(y: np.ndarray, design: Any, blocks: np.ndarray
                ) -> tuple[dict[str, float], dict[str, Any]]:
    import manylm

    t0 = time.perf_counter()
    result = manylm.duplicate_correlation(y, design, blocks)
    t1 = time.perf_counter()
    return {"total": t1 - t0}, {"consensus": float(result.consensus)}


def blocked_once(y: np.ndarray, design: Any, blocks: np.ndarray, rho: float
                 ) -> tuple[dict[str, float], dict[str, Any]]:
    import manylm

    t0 = time.perf_counter()
    fit = manylm.lm_fit(y, design, block=blocks, correlation=rho)
    t1 = time.perf_counter()
    eb = manylm.ebayes(fit)
    table = eb.top_table(COEF)
    t2 = time.perf_counter()
    times = {"total": t2 - t0, "lm_fit": t1 - t0, "ebayes+top_table": t2 - t1}
    top = [int(i) for i in eb.feature_ids.get_indexer(table.index[:5])]
    return times, {"t": np.asarray(eb.t)[:N_CHECK, eb.coefficient_names.index(COEF)].copy(),
                   "n_rows": len(table), "top": top}


def bench_manylm(once: Callable[[], tuple[dict[str, float], dict[str, Any]]],
                 repeats: int) -> dict[str, Any]:
    """One warm-up (whose results are the check values), then the best of ``repeats``."""
    times, check = once()
    warmup = times["total"]
    runs = []
    for _ in range(repeats):
        gc.collect()
        times, _ = once()
        runs.append(times)
    gc.collect()
    best = min(runs, key=lambda r: r["total"])
    return {"seconds": best["total"], "split": best, "runs": [r["total"] for r in runs],
            "warmup_s": warmup, "check": check}


# -------------------------------------------------------------------------------------- R limma

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]; kind <- args[2]; G <- as.integer(args[3]); n <- as.integer(args[4])
what <- args[5]; coef <- as.integer(args[6]); reps <- as.integer(args[7])
budget <- as.numeric(args[8]); ncheck <- as.integer(args[9])
suppressPackageStartupMessages(library(limma))
read_matrix <- function(path, what) {
  size <- if (what == "integer") 4L else 8L
  con <- file(path, "rb")
  v <- readBin(con, what = what, n = as.double(G) * n, size = size, endian = "little")
  close(con)
  stopifnot(length(v) == as.double(G) * n)
  matrix(v, nrow = G, ncol = n)  # the file is column-major G x n
}
design <- as.matrix(read.delim(file.path(dir, "design.tsv"), check.names = FALSE))
if (kind == "voom") {
  counts <- read_matrix(file.path(dir, "counts.bin"), what)
} else {
  Y <- read_matrix(file.path(dir, "Y.bin"), "double")
  blocks <- readLines(file.path(dir, "blocks.txt"))
  stopifnot(length(blocks) == n)
  if (kind == "blocked") rho <- as.numeric(readLines(file.path(dir, "rho.txt")))
}
cat(sprintf("LIMMA %s\n", as.character(packageVersion("limma"))))
spent <- 0
for (i in seq_len(reps)) {
  invisible(gc())
  st <- system.time({
    if (kind == "voom") {
      v <- voom(counts, design)
      fit <- lmFit(v, design)
      eb <- eBayes(fit)
      tt <- topTable(eb, coef = coef, number = Inf, sort.by = "P")
    } else if (kind == "dupcor") {
      dc <- duplicateCorrelation(Y, design, block = blocks)
    } else {
      fit <- lmFit(Y, design, block = blocks, correlation = rho)
      eb <- eBayes(fit)
      tt <- topTable(eb, coef = coef, number = Inf, sort.by = "P")
    }
  })
  cat(sprintf("TIME %.6f\n", st[["elapsed"]])); flush(stdout())
  spent <- spent + st[["elapsed"]]
  if (spent > budget) break
}
if (kind == "dupcor") {
  cat(sprintf("CONSENSUS %.17g\n", dc$consensus.correlation))
} else {
  k <- min(ncheck, G)
  writeLines(sprintf("%.17g", eb$t[1:k, coef]), file.path(dir, "t.txt"))
  cat(sprintf("NROW %d\n", nrow(tt)))
  cat(sprintf("TOP %s\n", paste(head(rownames(tt), 5), collapse = ",")))
}
"""


def bench_r(kind: str, design: Any, repeats: int, *, counts: pd.DataFrame | None = None,
            y: np.ndarray | None = None, blocks: np.ndarray | None = None,
            rho: float | None = None) -> dict[str, Any]:
    coef = design.coefficient_names.index(COEF) + 1
    with tempfile.TemporaryDirectory(prefix="manylm-bench-counts-") as tmp:
        d = Path(tmp)
        # tofile writes in C order: X.T in C order is X in column-major order, which R's
        # matrix(v, nrow = G) reads back as G x n.
        if kind == "voom":
            values = counts.to_numpy()
            what = "integer" if values.max() < 2**31 else "double"
            values.T.astype("<i4" if what == "integer" else "<f8").tofile(d / "counts.bin")
            shape = values.shape
        else:
            what = "double"
            y.T.astype("<f8", copy=False).tofile(d / "Y.bin")
            (d / "blocks.txt").write_text("\n".join(str(b) for b in blocks) + "\n")
            if rho is not None:
                (d / "rho.txt").write_text(f"{rho:.17g}\n")
            shape = y.shape
        design.as_frame().to_csv(d / "design.tsv", sep="\t", index=False, float_format="%.17g")
        stdout, wall = run_rscript(R_SCRIPT, d, kind, shape[0], shape[1], what, coef, repeats,
                                   R_BUDGET_S, N_CHECK)
        tags = r_tags(stdout)
        times = [float(v) for v in tags.get("TIME", [])]
        info = {key: values[-1] for key, values in tags.items()}
        out: dict[str, Any] = {"seconds": min(times), "runs": times, "wall_incl_io_s": wall,
                               "limma": info.get("LIMMA"), "counts_type": what}
        if kind == "dupcor":
            out["consensus"] = float(info["CONSENSUS"])
        else:
            out["t"] = np.loadtxt(d / "t.txt")
            out["n_rows"] = int(info["NROW"])
            out["top"] = info["TOP"].split(",")
    return out


# ------------------------------------------------------------------------------------ reporting


def print_report(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    headers = ["workload", "shape", "manylm s", "R s", "R/manylm", "agreement"]
    lines = [[row["workload"], f"{row['shape'][0]:,} x {row['shape'][1]}",
              fmt_s(row["manylm_s"]), fmt_s(row.get("r_s")), fmt_ratio(row.get("ratio_r")),
              row.get("agreement", "-")] for row in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    print()
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for line in lines:
        print(" | ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)))
    print(f"  agreement: max relative difference of t (first {N_CHECK} features), or the two "
          "consensus correlations (manylm / R) and their relative difference")

    print("\nmanylm split (best run) and runs; R runs")
    for row in rows:
        split = " / ".join(f"{k} {v:.4f}" for k, v in row["manylm_split"].items()
                           if k != "total")
        print(f"  {row['workload']:<16} " + (split + "   " if split else "")
              + "(manylm runs: " + ", ".join(f"{r:.4f}" for r in row["manylm_runs"])
              + (("; R runs: " + ", ".join(f"{r:.3f}" for r in row["r_runs"]))
                 if "r_runs" in row else "") + ")")

    print("\nCPU used by other processes while timing (cores; 0 = quiet machine): manylm / R")
    noisy = False
    for row in rows:
        values = [row.get(f"others_cpu_during_{k}") for k in ("manylm", "r")]
        noisy = noisy or any(v is not None and v > 0.2 for v in values)
        print(f"  {row['workload']:<16} " + " / ".join("-" if v is None else f"{v:.2f}"
                                                      for v in values))
    if noisy:
        print("  WARNING: other processes used the CPU during timing; times are inflated and "
              "ratios less reliable. Re-run on a quiet machine.")

    notes = [(row["workload"], note) for row in rows for note in row.get("notes", [])]
    if notes:
        print("\nNotes")
        for name, note in notes:
            print(f"  {name:<16} {note}")

    print("\nTargets")
    marks = []
    for row in rows:
        target = WORKLOADS[row["workload"]]["vs_r"]
        if target is None:
            continue
        value = row.get("ratio_r")
        mark = "n/a" if value is None else ("PASS" if value >= target else "MISS")
        desc = f"{row['workload']}: >= {target:.0f}x faster than R limma"
        marks.append({"target": desc, "value": fmt_ratio(value), "result": mark})
        print(f"  [{mark:>4}] {desc}: {fmt_ratio(value)}")
    return marks


# ----------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-r", action="store_true", help="do not run R limma")
    parser.add_argument("--workloads", nargs="+", metavar="NAMES",
                        help=f"workloads to run (comma or space separated): {', '.join(WORKLOADS)}")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed repeats (default 3; dupcor_20k: manylm best of 5 and a "
                        "single R run regardless)")
    parser.add_argument("--wait-quiet", type=float, default=30.0, metavar="SECONDS",
                        help="before each timed section, wait up to this long for other "
                        "processes to leave the CPU idle (default 30; 0 to not wait)")
    parser.add_argument("--output", type=Path, help="JSON output path "
                        "(default bench/results/counts-<date>[-partial].json)")
    args = parser.parse_args(argv)

    if args.workloads:
        names = [n for item in args.workloads for n in item.split(",") if n]
        unknown = [n for n in names if n not in WORKLOADS]
        if unknown:
            parser.error(f"unknown workload(s): {', '.join(unknown)}; choose from "
                         f"{', '.join(WORKLOADS)}")
        names = [n for n in WORKLOADS if n in names]  # dupcor before blocked (reuses rho)
    else:
        names = list(WORKLOADS)

    import manylm

    run_r, r_reason = (False, "--skip-r") if args.skip_r else r_packages_available("limma")
    limma_version = r_reason if run_r else None
    if not run_r:
        log(f"R limma: skipped ({r_reason})")
    log(f"manylm source sha256 {source_hash()[:12]}")

    block_data: dict[str, Any] | None = None
    rho: float | None = None
    rows: list[dict[str, Any]] = []
    for name in names:
        spec = WORKLOADS[name]
        m_repeats = spec["manylm_repeats"] or args.repeats
        r_repeats = spec["r_repeats"] or args.repeats
        log(f"[{name}] generating data ...")
        if name == "voom_30k":
            data = make_counts()
            design = manylm.design_matrix(FORMULA, data["samples"])
            counts = data["counts"]
            once = partial(voom_once, counts, design)
        else:
            if block_data is None:
                block_data = make_blocks()
            y, blocks = block_data["y"], block_data["blocks"]
            design = manylm.design_matrix(FORMULA, block_data["samples"])
            if name == "dupcor_20k":
                once = partial(dupcor_once, y, design, blocks)
            else:
                if rho is None:
                    rho = float(manylm.duplicate_correlation(y, design, blocks).consensus)
                once = partial(blocked_once, y, design, blocks, rho)

        row: dict[str, Any] = {"workload": name, "shape": list(spec["shape"]),
                               "manylm_repeats": m_repeats, "notes": []}
        log(f"[{name}] manylm (best of {m_repeats}) ...")
        wait_for_quiet(args.wait_quiet)
        started = CPU.start()
        m = bench_manylm(once, m_repeats)
        row["others_cpu_during_manylm"] = CPU.others(started)
        row.update(manylm_s=m["seconds"], manylm_split=m["split"], manylm_runs=m["runs"],
                   manylm_warmup_s=m["warmup_s"])
        check = m["check"]
        if "n_rows" in check and check["n_rows"] != spec["shape"][0]:
            row["notes"].append(f"manylm top_table has {check['n_rows']} rows")
        if name == "dupcor_20k":
            rho = check["consensus"]
            row["manylm_consensus"] = rho
            row["agreement"] = f"rho {rho:.6f}"
        if name == "blocked_fit_20k":
            row["correlation_used"] = rho
        log(f"[{name}] manylm {m['seconds']:.4f} s  split {m['split']}")

        if run_r:
            log(f"[{name}] R limma (best of {r_repeats}) ...")
            try:
                wait_for_quiet(args.wait_quiet)
                started = CPU.start()
                if name == "voom_30k":
                    r = bench_r("voom", design, r_repeats, counts=counts)
                elif name == "dupcor_20k":
                    r = bench_r("dupcor", design, r_repeats, y=y, blocks=blocks)
                else:
                    r = bench_r("blocked", design, r_repeats, y=y, blocks=blocks, rho=rho)
                row["others_cpu_during_r"] = CPU.others(started)
                row.update(r_s=r["seconds"], r_runs=r["runs"], r_repeats=r_repeats,
                           r_wall_incl_io_s=r["wall_incl_io_s"])
                if name == "dupcor_20k":
                    row["r_consensus"] = r["consensus"]
                    diff = abs(check["consensus"] - r["consensus"]) / abs(r["consensus"])
                    row["r_consensus_rel_diff"] = diff
                    row["agreement"] = (f"rho {check['consensus']:.6f} / {r['consensus']:.6f}"
                                        f" (rel {diff:.1e})")
                    if diff > 1e-6:
                        row["notes"].append("ANOMALY: consensus differs from R by more than "
                                            "1e-6 (relative)")
                else:
                    diff = max_rel_diff(check["t"], r["t"])
                    row["r_t_max_rel_diff"] = diff
                    row["agreement"] = f"t rel {diff:.1e}"
                    if name == "voom_30k":
                        row["r_counts_type"] = r["counts_type"]
                        r_top = [counts.index[int(s) - 1] for s in r["top"]]
                    else:
                        r_top = [int(s) - 1 for s in r["top"]]
                    row["r_top5_same"] = check["top"] == r_top
                    if not row["r_top5_same"]:
                        row["notes"].append(f"top 5 differ: manylm {check['top']}, R {r_top}")
                    if r["n_rows"] != spec["shape"][0]:
                        row["notes"].append(f"R topTable has {r['n_rows']} rows")
                    if diff > 1e-6:
                        row["notes"].append("ANOMALY: t differs from R by more than 1e-6 "
                                            "(relative)")
                log(f"[{name}] R {r['seconds']:.3f} s  runs {r['runs']}")
            except Exception as exc:  # report and carry on
                row["notes"].append(f"R failed: {exc}")
                log(f"[{name}] R failed: {exc}")
        row["ratio_r"] = row["r_s"] / row["manylm_s"] if "r_s" in row else None
        rows.append(row)
        gc.collect()

    marks = print_report(rows)

    if args.output:
        out_path = args.output
    else:
        suffix = "" if names == list(WORKLOADS) else "-partial"
        out_path = RESULTS_DIR / f"counts-{dt.date.today().isoformat()}{suffix}.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "counts",
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        **run_metadata(),
        "r_limma": limma_version, "r_skipped": None if run_r else r_reason,
        "design": FORMULA, "coefficient": COEF, "repeats": args.repeats,
        "workloads": rows, "targets": marks,
    }
    write_json(out_path, result)
    print(f"\nResults written to {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
