"""``manylm example``: the main job on a real data set shipped with the package."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from manylm.cli.fit_command import FitRequest, run_fit
from manylm.io import example_paths

__all__ = ["add_parser"]

EXAMPLE_FORMULA = "~ cancer + C(batch)"


def add_parser(verbs: Any) -> None:
    parser = verbs.add_parser(
        "example", help="run cancer vs normal, adjusted for batch, on the bundled bladder data",
        description="Fit '~ cancer + C(batch)' to the bundled bladderbatch microarray data "
        "(22,283 probe sets x 57 samples; Dyrskjot et al. 2004) and test cancer vs normal.",
    )
    parser.add_argument("--out-dir", default="manylm-example", metavar="DIR",
                        help="where to write the table and run record (default ./manylm-example)")
    parser.add_argument("--top", type=int, default=10, help="rows to print (default 10)")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    expression, samples = example_paths()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "cancer_vs_normal.tsv"
    request = FitRequest(
        expression=str(expression), samples=str(samples), design=EXAMPLE_FORMULA,
        tests=["cancer[Cancer]"], references={"cancer": "Normal"}, out=str(out),
        quiet=args.quiet,
    )
    table, record = run_fit(request)
    write = sys.stdout.write
    write(f"manylm example: bladderbatch, {record['n_features']} probe sets x "
          f"{len(record['samples']['used'])} samples\n")
    write(f"design {EXAMPLE_FORMULA} (reference cancer=Normal); test cancer[T.Cancer]\n")
    significant = int((table["adj_p_value"] < 0.05).sum())
    write(f"{significant} probe sets with BH-adjusted p < 0.05\n\n")
    shown = table.head(args.top)[["feature", "estimate", "mean", "t", "p_value", "adj_p_value"]]
    write(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}") + "\n\n")
    write(f"table:      {out.resolve()}\n")
    write(f"run record: {out.resolve()}.run.json\n")
    return 0
