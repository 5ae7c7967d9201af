#!/usr/bin/env python
"""Benchmark of manylm's HTML report: render time and file size at 450,000 features.

Run from the repository root::

    python bench/bench_report.py                  # 450,000 x 100 (bench_core's dense_450k)
    python bench/bench_report.py --skip-r         # manylm alone
    python bench/bench_report.py --features 20000 # a smaller workload

The data are bench_core's synthetic workload (fixed seed; 100 samples, design ``~ group +
C(batch) + age``, 5% of features with a true group effect), so the report has a realistic
number of significant features. Not timed: ``lm_fit(keep_residuals=True)`` + ``ebayes`` +
``top_table`` (the analysis), ``residual_components`` and ``qvalue`` (each reported on its
own line). Timed, once or twice (``--repeats``): ``render_report`` of the whole report (every
diagnostic, the sample MDS on the 450,000 x 100 matrix included) and, on its own,
``sample_mds`` (the heaviest part). The report's size in bytes is printed.

Peer (when ``Rscript`` with limma is installed): R draws the comparable limma figures from the
same numbers into PNG files: ``plotMDS`` of the matrix (top = 500, pairwise), ``plotSA``,
``volcanoplot``, ``plotMD`` and ``hist`` of the p-values, each with ``png()``; the fit inside R
is not timed. R's plotMDS coordinates are compared with manylm's (up to sign).

Results go to ``bench/results/report-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_common import (  # noqa: E402  (a sibling script, not a package)
    CPU,
    RESULTS_DIR,
    log,
    r_packages_available,
    run_metadata,
    run_rscript,
    write_json,
)
from bench_core import COEF, FORMULA, N_SAMPLES, WORKLOADS, simulate  # noqa: E402

R_MDS_BUDGET_S = 900


def make_workload(n_features: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """bench_core's generator, for any number of features (same seed as dense_450k)."""
    data = simulate(n_features, WORKLOADS["dense_450k"]["seed"])
    samples = data["samples"]
    features = pd.Index([f"cg{i:08d}" for i in range(n_features)], name="feature")
    return pd.DataFrame(data["y"], index=features, columns=samples.index), samples


def analysis(expression: pd.DataFrame, samples: pd.DataFrame) -> dict[str, Any]:
    import manylm

    timings: dict[str, float] = {}
    clock = time.perf_counter()
    design = manylm.design_matrix(FORMULA, samples)
    fit = manylm.lm_fit(expression, design, keep_residuals=True)
    result = manylm.ebayes(fit)
    table = result.top_table(COEF).reset_index()
    timings["fit_ebayes_table"] = time.perf_counter() - clock
    structure = None
    try:
        from manylm.confounders.residual_structure import residual_components
    except ImportError:
        log("residual_components is not importable: the report has no residual heat map")
    else:
        clock = time.perf_counter()
        covariates = samples.astype({"batch": "category"})
        structure = residual_components(fit.residuals, covariates)
        timings["residual_components"] = time.perf_counter() - clock
    pi0 = q_values = None
    try:
        from manylm.inference.qvalue import qvalue
    except ImportError:
        log("qvalue is not importable: no pi0 line, no q-values")
    else:
        clock = time.perf_counter()
        q = qvalue(result.p_value_of(design.coefficient_names.index(COEF)))
        pi0, q_values = q.pi0, q.q_values
        timings["qvalue"] = time.perf_counter() - clock
    return {"design": design, "result": result, "table": table, "structure": structure,
            "pi0": pi0, "q_values": q_values, "timings": timings}


def bench_manylm(expression: pd.DataFrame, samples: pd.DataFrame, repeats: int
                 ) -> dict[str, Any]:
    from manylm.report import ReportInputs, render_report, sample_mds

    parts = analysis(expression, samples)
    record = {"command": "fit", "argv": ["fit", "expression.parquet", "--samples",
                                          "samples.tsv", "--design", FORMULA, "--test", COEF],
              "design": {"formula": FORMULA, "coefficients": parts["design"].coefficient_names},
              "options": {"adjust": "BH"}}
    inputs = ReportInputs(run_record=record, samples=samples, result=parts["result"],
                          table=parts["table"], tested=[COEF], expression=expression,
                          residual_structure=parts["structure"], pi0=parts["pi0"],
                          q_values=parts["q_values"])
    render_times, mds_times, render_cpu, mds_cpu = [], [], [], []
    text = ""
    others = []
    for _ in range(repeats):
        clock, cpu = time.perf_counter(), time.process_time()
        started = CPU.start()
        text = render_report(inputs)
        others.append(CPU.others(started))
        render_times.append(time.perf_counter() - clock)
        render_cpu.append(time.process_time() - cpu)
        clock, cpu = time.perf_counter(), time.process_time()
        mds = sample_mds(expression)
        mds_times.append(time.perf_counter() - clock)
        mds_cpu.append(time.process_time() - cpu)
    size = len(text.encode("utf-8"))
    n_images = text.count("data:image/png;base64,")
    return {"render_s": min(render_times), "render_all_s": render_times,
            "render_cpu_s": min(render_cpu), "mds_cpu_s": min(mds_cpu),
            "other_processes_cores": others,
            "mds_s": min(mds_times), "size_bytes": size, "n_images": n_images,
            "untimed_s": parts["timings"], "mds": mds, "result": parts["result"],
            "design": parts["design"]}


R_SCRIPT = r"""
suppressPackageStartupMessages(library(limma))
args <- commandArgs(trailingOnly = TRUE)
folder <- args[1]; n_features <- as.integer(args[2]); n_samples <- as.integer(args[3])
y <- matrix(readBin(file.path(folder, "y.bin"), "double", n_features * n_samples),
            nrow = n_features)
design <- as.matrix(read.delim(file.path(folder, "design.tsv"), check.names = FALSE)[, -1])
fit <- eBayes(lmFit(y, design))
timed <- function(expr) unname(system.time(expr)[["elapsed"]])
out <- list()
out$mds <- timed({ png(file.path(folder, "mds.png")); mds <- plotMDS(y, top = 500); dev.off() })
out$sa <- timed({ png(file.path(folder, "sa.png")); plotSA(fit); dev.off() })
out$volcano <- timed({ png(file.path(folder, "volcano.png"))
                       volcanoplot(fit, coef = 2); dev.off() })
out$md <- timed({ png(file.path(folder, "md.png")); plotMD(fit, column = 2); dev.off() })
out$hist <- timed({ png(file.path(folder, "hist.png"))
                    hist(fit$p.value[, 2], breaks = 20); dev.off() })
writeLines(sprintf("%s\t%.6f", names(out), unlist(out)), file.path(folder, "timings.tsv"))
coords <- cbind(mds$x, mds$y)
write.table(format(coords, digits = 17), file.path(folder, "mds.tsv"), sep = "\t",
            quote = FALSE, row.names = FALSE, col.names = FALSE)
"""


def bench_r(expression: pd.DataFrame, design: Any) -> dict[str, Any] | None:
    with tempfile.TemporaryDirectory(prefix="manylm-bench-report-") as folder:
        base = Path(folder)
        expression.to_numpy(dtype=np.float64).T.tofile(base / "y.bin")  # column-major for R
        design.as_frame().to_csv(base / "design.tsv", sep="\t")
        log("R: limma plots (plotMDS on the whole matrix may take minutes) ...")
        try:
            run_rscript(R_SCRIPT, base, expression.shape[0], expression.shape[1],
                        timeout=R_MDS_BUDGET_S)
        except subprocess.TimeoutExpired:
            log(f"R did not finish within {R_MDS_BUDGET_S} s; no R figures")
            return None
        except RuntimeError as error:
            log(str(error))
            return None
        timings = dict(line.split("\t") for line in
                       (base / "timings.tsv").read_text().splitlines())
        coordinates = np.loadtxt(base / "mds.tsv")
    return {"timings_s": {k: float(v) for k, v in timings.items()},
            "total_s": float(sum(float(v) for v in timings.values())),
            "mds_coordinates": coordinates}


def compare_mds(ours: Any, r_coordinates: np.ndarray) -> float:
    mine = ours.coordinates.to_numpy()[:, :2]
    signs = np.sign(np.sum(mine * r_coordinates, axis=0))
    scale = np.max(np.abs(r_coordinates))
    return float(np.max(np.abs(mine * signs - r_coordinates)) / scale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=450_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--skip-r", action="store_true")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)

    expression, samples = make_workload(args.features)
    workload = f"{args.features:,} features x {N_SAMPLES} samples, design {FORMULA}, test {COEF}"
    log(f"workload: {workload}")
    ours = bench_manylm(expression, samples, args.repeats)
    r_result = None
    has_r, why = r_packages_available("limma")
    if args.skip_r:
        log("R skipped (--skip-r)")
    elif not has_r:
        log(f"R skipped: {why}")
    else:
        r_result = bench_r(expression, ours["design"])

    print(f"workload: {workload}")
    for name, seconds in ours["untimed_s"].items():
        print(f"  (not timed) {name}: {seconds:.3f} s")
    print(f"manylm render_report: {ours['render_s']:.3f} s (runs: "
          f"{', '.join(f'{t:.3f}' for t in ours['render_all_s'])})")
    load = ", ".join("?" if o is None else f"{o:.1f}" for o in ours["other_processes_cores"])
    print(f"  CPU time of the process (all threads): {ours['render_cpu_s']:.3f} s; other "
          f"processes used {load} core(s) meanwhile")
    print(f"  of which sample_mds alone: {ours['mds_s']:.3f} s (CPU {ours['mds_cpu_s']:.3f} s)")
    print(f"  report size: {ours['size_bytes'] / 1e6:.2f} MB, {ours['n_images']} PNG images")
    summary: dict[str, Any] = {"workload": workload, "n_features": args.features,
                               "n_samples": N_SAMPLES, "render_s": ours["render_s"],
                               "render_all_s": ours["render_all_s"], "mds_s": ours["mds_s"],
                               "render_cpu_s": ours["render_cpu_s"],
                               "mds_cpu_s": ours["mds_cpu_s"],
                               "other_processes_cores": ours["other_processes_cores"],
                               "size_bytes": ours["size_bytes"],
                               "n_images": ours["n_images"], "untimed_s": ours["untimed_s"]}
    if r_result is not None:
        r_total = r_result["total_s"]
        difference = compare_mds(ours["mds"], r_result["mds_coordinates"])
        print(f"R limma figures (plotMDS, plotSA, volcanoplot, plotMD, hist): {r_total:.3f} s")
        for name, seconds in r_result["timings_s"].items():
            print(f"  R {name}: {seconds:.3f} s")
        print(f"ratio R figures / manylm whole report: {r_total / ours['render_s']:.1f}x")
        print(f"ratio R plotMDS / manylm sample_mds: "
              f"{r_result['timings_s']['mds'] / ours['mds_s']:.1f}x")
        print(f"MDS coordinates, max |difference| / max |R|: {difference:.2e}")
        summary.update({"r_timings_s": r_result["timings_s"], "r_total_s": r_total,
                        "ratio_r_total_vs_report": r_total / ours["render_s"],
                        "ratio_r_mds_vs_mds": r_result["timings_s"]["mds"] / ours["mds_s"],
                        "mds_max_rel_difference": difference})
    summary.update(run_metadata())
    RESULTS_DIR.mkdir(exist_ok=True)
    suffix = "" if args.features == 450_000 else f"-{args.features}"
    path = Path(args.output) if args.output else \
        RESULTS_DIR / f"report-{dt.date.today().isoformat()}{suffix}.json"
    write_json(path, summary)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    if shutil.which("Rscript") is None:
        log("Rscript not found: the R peer will be skipped")
    sys.exit(main())
