#!/usr/bin/env python
"""ComBat benchmark of manylm: ``combat`` (parametric and non-parametric) and ``combat_seq``
against R sva and the Python peers, in the same run.

Run from the repository root::

    python bench/bench_combat.py                       # every workload (about 15-25 minutes)
    python bench/bench_combat.py --workloads parametric_20k,seq_pasilla
    python bench/bench_combat.py --skip-r --skip-python-peers

Workloads (synthetic data from a fixed seed, except pasilla):

* ``parametric_20k``: 20,000 features x 1,000 samples in 50 batches of 20, protecting a
  two-level ``group`` (10 + 10 in every batch); each feature has a batch shift N(0, 0.5^2) and a
  batch scale exp(N(0, 0.2^2)) per batch, and 5% of the features a group effect of +/-1.
  manylm ``combat(y, batch, covariates=group)`` best of ``--repeats`` (default 2) after one
  warm-up; R ``ComBat(Y, batch, mod)`` once (``system.time``, elapsed; reading the data is not
  timed); pyComBat (``combat`` package) and inmoose ``pycombat_norm`` once each. Agreement: the
  largest relative difference from R on the first 1,000 features.
* ``nonparametric_20k``: the same data with ``parametric=False``, manylm once. sva's
  non-parametric ComBat loops over features in R (O(G^2 n) per batch), far too slow at 20,000
  features: R is timed on the first 1,000 and 2,000 features of the same data and its time at
  20,000 is extrapolated as t(2,000) x 10^2 (the fitted exponent between the two sizes is
  printed); manylm is also timed at 2,000 for a direct ratio, and its result compared with R's.
* ``seq_pasilla``: ComBat-seq on the real pasilla counts (14,599 genes x 7 samples, batch =
  library type, group = condition); manylm best of ``--repeats``; R ``ComBat_seq`` once;
  inmoose ``pycombat_seq`` once (no group argument: the condition is passed as ``covar_mod``).
  Agreement: the number of counts that differ from R's.

Results are printed and written as JSON to ``bench/results/combat-<date>.json``. The machine is
shared: the CPU used by other processes is measured while each tool runs (from /proc/stat).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_core import (  # noqa: E402 - shared helpers of the core benchmark
    CPU,
    _finite,
    _json_default,
    fmt_ratio,
    fmt_s,
    log,
    max_rel_diff,
    run_metadata,
    wait_for_quiet,
)

RESULTS_DIR = HERE / "results"
REFERENCE = HERE.parent / "tests" / "reference" / "inputs"
SEED = 20240801
N_FEATURES, N_SAMPLES, N_BATCHES = 20_000, 1_000, 50
N_CHECK = 1000
SMALL_SIZES = (1_000, 2_000)
WORKLOADS = ("parametric_20k", "nonparametric_20k", "seq_pasilla")


def make_data() -> dict[str, Any]:
    rng = np.random.default_rng(SEED)
    batch = np.repeat(np.arange(N_BATCHES), N_SAMPLES // N_BATCHES)
    group = np.tile(np.repeat(["A", "B"], N_SAMPLES // N_BATCHES // 2), N_BATCHES)
    shift = rng.normal(0, 0.5, (N_FEATURES, N_BATCHES))
    scale = np.exp(rng.normal(0, 0.2, (N_FEATURES, N_BATCHES)))
    effect = np.where(rng.random(N_FEATURES) < 0.05, rng.choice([-1.0, 1.0], N_FEATURES), 0.0)
    y = rng.normal(0, 1, (N_FEATURES, N_SAMPLES)) * scale[:, batch]
    y += 8 + rng.normal(0, 1, (N_FEATURES, 1)) + shift[:, batch]
    y += effect[:, None] * (group == "B")[None, :]
    labels = np.array([f"b{b:02d}" for b in batch])
    return {"y": y, "batch": labels, "group": group}


def manylm_combat(y: np.ndarray, batch: np.ndarray, group: np.ndarray,
                  parametric: bool) -> np.ndarray:
    from manylm.confounders.combat import combat

    covariates = (group == "B").astype(float)[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(combat(y, batch, covariates=covariates, parametric=parametric))


def timed(function: Callable[[], Any], repeats: int, warm_up: bool = True,
          wait: float = 0.0) -> tuple[float, list[float], Any, float | None]:
    if warm_up:
        function()
    wait_for_quiet(wait)
    started = CPU.start()
    runs, result = [], None
    for _ in range(repeats):
        clock = time.perf_counter()
        result = function()
        runs.append(time.perf_counter() - clock)
    return min(runs), runs, result, CPU.others(started)


def r_has_sva() -> tuple[bool, str]:
    try:
        out = subprocess.run(["Rscript", "-e", 'suppressPackageStartupMessages(library(sva)); '
                              'cat(as.character(packageVersion("sva")))'],
                             capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"Rscript failed: {exc}"
    if out.returncode != 0:
        return False, "sva does not load"
    return True, out.stdout.strip()


def r_combat(y: np.ndarray, batch: np.ndarray, group: np.ndarray, parametric: bool,
             n_check: int) -> dict[str, Any]:
    """R ComBat on the same data: elapsed seconds and its first ``n_check`` rows."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        y.T.astype(np.float64).tofile(work / "y.bin")  # column-major for R's matrix()
        (work / "batch.txt").write_text("\n".join(batch) + "\n")
        (work / "group.txt").write_text("\n".join(group) + "\n")
        script = f"""
suppressPackageStartupMessages(library(sva))
G <- {y.shape[0]}; n <- {y.shape[1]}
Y <- matrix(readBin("{work}/y.bin", "double", G * n), nrow = G)
batch <- readLines("{work}/batch.txt"); group <- factor(readLines("{work}/group.txt"))
mod <- model.matrix(~group)
t <- system.time(invisible(capture.output(suppressMessages(
  r <- ComBat(Y, batch, mod = mod, par.prior = {"TRUE" if parametric else "FALSE"})))))
cat(t[["elapsed"]], "\\n", file = "{work}/time.txt")
write.table(format(r[seq_len(min({n_check}, G)), ], digits = 17), "{work}/out.tsv",
            sep = "\\t", quote = FALSE, row.names = FALSE, col.names = FALSE)
"""
        (work / "run.R").write_text(script)
        done = subprocess.run(["Rscript", str(work / "run.R")], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "R failed")
        seconds = float((work / "time.txt").read_text().split()[0])
        first = np.loadtxt(work / "out.tsv", ndmin=2)
    return {"seconds": seconds, "first": first}


def bench_parametric(data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    y, batch, group = data["y"], data["batch"], data["group"]
    row: dict[str, Any] = {"workload": "parametric_20k", "shape": list(y.shape),
                           "batches": N_BATCHES, "notes": []}
    log("[parametric_20k] manylm ...")
    best, runs, ours, others = timed(lambda: manylm_combat(y, batch, group, True),
                                     args.repeats, wait=args.wait_quiet)
    row.update(manylm_s=best, manylm_runs=runs, others_cpu_during_manylm=others)
    log(f"  manylm {best:.2f} s (runs {', '.join(f'{r:.2f}' for r in runs)})")
    if args.run_r:
        log("[parametric_20k] R sva ComBat (one run) ...")
        wait_for_quiet(args.wait_quiet)
        started = CPU.start()
        r = r_combat(y, batch, group, True, N_CHECK)
        row.update(r_s=r["seconds"], others_cpu_during_r=CPU.others(started),
                   r_max_rel_diff=max_rel_diff(ours[:N_CHECK], r["first"]))
        log(f"  R {r['seconds']:.1f} s; max rel diff {row['r_max_rel_diff']:.1e}")
    if args.run_python_peers:
        frame = pd.DataFrame(y)
        peers = {"pycombat": lambda: _pycombat(frame, batch, group),
                 "inmoose": lambda: _inmoose_norm(frame, batch, group)}
        for name, run in peers.items():
            log(f"[parametric_20k] {name} (one run) ...")
            try:
                seconds, _, theirs, others = timed(run, 1, warm_up=False, wait=args.wait_quiet)
                row[f"{name}_s"] = seconds
                row[f"others_cpu_during_{name}"] = others
                row[f"{name}_max_rel_diff"] = max_rel_diff(ours[:N_CHECK],
                                                           np.asarray(theirs)[:N_CHECK])
                log(f"  {name} {seconds:.1f} s")
            except Exception as exc:  # report and carry on
                row["notes"].append(f"{name} failed: {exc!r}")
                log(f"  {name} failed: {exc!r}")
    return row


def _pycombat(frame: pd.DataFrame, batch: np.ndarray, group: np.ndarray) -> np.ndarray:
    from combat.pycombat import pycombat

    return pycombat(frame, list(batch), mod=[list(group)]).to_numpy()


def _inmoose_norm(frame: pd.DataFrame, batch: np.ndarray, group: np.ndarray) -> np.ndarray:
    from inmoose.pycombat import pycombat_norm

    return np.asarray(pycombat_norm(frame, list(batch), covar_mod=list(group)))


def bench_nonparametric(data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    y, batch, group = data["y"], data["batch"], data["group"]
    row: dict[str, Any] = {"workload": "nonparametric_20k", "shape": list(y.shape),
                           "batches": N_BATCHES, "notes": []}
    log("[nonparametric_20k] manylm (one run) ...")
    manylm_combat(y[:500], batch, group, False)  # compile the kernels
    seconds, _, _, others = timed(lambda: manylm_combat(y, batch, group, False), 1,
                                  warm_up=False, wait=args.wait_quiet)
    row.update(manylm_s=seconds, others_cpu_during_manylm=others)
    log(f"  manylm {seconds:.1f} s")
    small: dict[str, Any] = {}
    for size in SMALL_SIZES:
        part = y[:size]
        best, _, ours, _ = timed(lambda part=part: manylm_combat(part, batch, group, False),
                                 1, warm_up=False)
        small[str(size)] = {"manylm_s": best}
        if args.run_r:
            log(f"[nonparametric_20k] R sva ComBat(par.prior = FALSE) on {size:,} features ...")
            r = r_combat(part, batch, group, False, N_CHECK)
            small[str(size)].update(r_s=r["seconds"],
                                    r_max_rel_diff=max_rel_diff(ours[:N_CHECK], r["first"]))
            log(f"  R {r['seconds']:.1f} s, manylm {best:.2f} s")
    row["small"] = small
    if args.run_r:
        t1, t2 = (small[str(s)]["r_s"] for s in SMALL_SIZES)
        row["r_exponent"] = float(np.log(t2 / t1) / np.log(SMALL_SIZES[1] / SMALL_SIZES[0]))
        row["r_s"] = t2 * (N_FEATURES / SMALL_SIZES[1]) ** 2
        row["r_extrapolated"] = True
    return row


def bench_seq(args: argparse.Namespace) -> dict[str, Any]:
    from manylm.confounders.combat_seq import combat_seq

    counts = pd.read_csv(REFERENCE / "pasilla_counts.tsv.gz", sep="\t", index_col=0)
    samples = pd.read_csv(REFERENCE / "pasilla_samples.tsv", sep="\t", index_col=0)
    row: dict[str, Any] = {"workload": "seq_pasilla", "shape": list(counts.shape),
                           "batches": 2, "notes": []}

    def ours_once() -> pd.DataFrame:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return combat_seq(counts, samples["type"], group=samples["condition"])

    best, runs, ours, others = timed(ours_once, args.repeats, wait=args.wait_quiet)
    row.update(manylm_s=best, manylm_runs=runs, others_cpu_during_manylm=others)
    log(f"[seq_pasilla] manylm {best:.2f} s")
    if args.run_r:
        script = f"""
suppressPackageStartupMessages(library(sva))
m <- as.matrix(read.delim("{REFERENCE}/pasilla_counts.tsv.gz", row.names = 1,
                          check.names = FALSE))
s <- read.delim("{REFERENCE}/pasilla_samples.tsv")
t <- system.time(invisible(capture.output(r <- ComBat_seq(m, batch = s$type,
                                                          group = s$condition))))
cat(t[["elapsed"]], "\\n")
write.table(r, stdout(), sep = "\\t", quote = FALSE, col.names = FALSE)
"""
        done = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True)
        lines = done.stdout.splitlines()
        row["r_s"] = float(lines[0])
        theirs = np.array([[float(v) for v in line.split("\t")[1:]] for line in lines[1:]])
        row["r_counts_differing"] = int((theirs != ours.to_numpy()).sum())
        log(f"  R {row['r_s']:.2f} s; counts differing: {row['r_counts_differing']}")
    if args.run_python_peers:
        try:
            from inmoose.pycombat import pycombat_seq

            seconds, _, theirs, _ = timed(
                lambda: pycombat_seq(counts, list(samples["type"]),
                                     covar_mod=list(samples["condition"])), 1, warm_up=False)
            row["inmoose_s"] = seconds
            row["inmoose_counts_differing"] = int((np.asarray(theirs) != ours.to_numpy()).sum())
            log(f"  inmoose {seconds:.2f} s")
        except Exception as exc:
            row["notes"].append(f"inmoose failed: {exc!r}")
    return row


def print_report(rows: list[dict[str, Any]]) -> None:
    print()
    header = ["workload", "shape", "manylm s", "R sva s", "R/manylm", "pycombat s",
              "inmoose s", "agreement with R"]
    print(" | ".join(header))
    for row in rows:
        agreement = "-"
        if "r_max_rel_diff" in row:
            agreement = f"max rel diff {row['r_max_rel_diff']:.1e} (first {N_CHECK})"
        if "r_counts_differing" in row:
            agreement = f"{row['r_counts_differing']} counts differ"
        if row.get("r_extrapolated"):
            small = row["small"][str(SMALL_SIZES[1])]
            agreement = (f"R extrapolated from {SMALL_SIZES[1]:,} features (exponent "
                         f"{row['r_exponent']:.2f}); at {SMALL_SIZES[1]:,}: R "
                         f"{small['r_s']:.1f} s, manylm {small['manylm_s']:.2f} s, max rel diff "
                         f"{small['r_max_rel_diff']:.1e}")
        ratio = row["r_s"] / row["manylm_s"] if "r_s" in row else None
        print(" | ".join([row["workload"], f"{row['shape'][0]:,} x {row['shape'][1]:,}",
                          fmt_s(row["manylm_s"]), fmt_s(row.get("r_s")), fmt_ratio(ratio),
                          fmt_s(row.get("pycombat_s")), fmt_s(row.get("inmoose_s")),
                          agreement]))
        for note in row["notes"]:
            print(f"    note: {note}")
    print("\nCPU used by other processes while timing (cores; 0 = quiet machine):")
    for row in rows:
        values = {k.removeprefix("others_cpu_during_"): v for k, v in row.items()
                  if k.startswith("others_cpu_during_") and v is not None}
        print(f"  {row['workload']:<18} " + ", ".join(f"{k} {v:.2f}" for k, v in values.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", nargs="+", metavar="NAMES",
                        help=f"comma or space separated: {', '.join(WORKLOADS)}")
    parser.add_argument("--skip-r", action="store_true", help="do not run R sva")
    parser.add_argument("--skip-python-peers", action="store_true",
                        help="do not run pyComBat and inmoose")
    parser.add_argument("--repeats", type=int, default=2, help="manylm timed repeats")
    parser.add_argument("--wait-quiet", type=float, default=10.0, metavar="SECONDS",
                        help="wait up to this long for an idle machine before timing")
    parser.add_argument("--output", type=Path, help="JSON output path")
    args = parser.parse_args(argv)
    names = ([n for item in args.workloads for n in item.split(",") if n] if args.workloads
             else list(WORKLOADS))
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(unknown)}")
    args.run_r, sva_version = (False, "--skip-r") if args.skip_r else r_has_sva()
    if not args.run_r:
        log(f"R sva: skipped ({sva_version})")
    args.run_python_peers = not args.skip_python_peers
    rows = []
    data = make_data() if any(n != "seq_pasilla" for n in names) else None
    for name in names:
        if name == "parametric_20k":
            rows.append(bench_parametric(data, args))  # type: ignore[arg-type]
        elif name == "nonparametric_20k":
            rows.append(bench_nonparametric(data, args))  # type: ignore[arg-type]
        else:
            rows.append(bench_seq(args))
        gc.collect()
    print_report(rows)
    suffix = "" if names == list(WORKLOADS) else "-partial"
    out_path = args.output or RESULTS_DIR / f"combat-{dt.date.today().isoformat()}{suffix}.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "combat", "date": dt.datetime.now().isoformat(timespec="seconds"),
              **run_metadata(), "r_sva": sva_version if args.run_r else None,
              "workloads": rows}
    out_path.write_text(json.dumps(_finite(result), indent=2, default=_json_default) + "\n")
    print(f"\nResults written to {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
