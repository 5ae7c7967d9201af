"""``manylm convert``: write a matrix once as Parquet or Zarr, to stream it afterwards."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from manylm.cli.progress import FeatureProgress
from manylm.interruptions import sigterm_as_interrupt

__all__ = ["add_parser", "run"]

_MIB = 1 << 20


def add_parser(verbs: Any) -> None:
    parser = verbs.add_parser(
        "convert", help="convert a matrix to Parquet or Zarr for streamed runs",
        description="Convert a features x samples matrix (TSV/CSV, optionally .gz; or Parquet, "
        "Zarr, HDF5, .h5ad) to Parquet or Zarr, streaming in constant memory, with the same "
        "checks as 'manylm fit'. The output format is told by OUT's suffix (.parquet or "
        ".zarr, a directory). OUT appears only when complete; an existing OUT is replaced.",
    )
    parser.add_argument("input", metavar="IN", help="the matrix to convert")
    parser.add_argument("output", metavar="OUT", help="the output: .parquet or .zarr")
    parser.add_argument("--dtype", choices=("float32", "float64"), default=None,
                        help="stored value type (default: float64 for text, else as stored)")
    parser.add_argument("--row-group-rows", type=int, default=None, metavar="N",
                        help="rows per Parquet row group or Zarr chunk (default: about 32 MB "
                        "of values)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    parser.set_defaults(run=run)


class _Progress:
    """Feeds ``convert_matrix``'s (done, total) reports to a bar created on the first one."""

    def __init__(self, description: str, scale: int, enabled: bool) -> None:
        self.description = description
        self.scale = scale
        self.enabled = enabled
        self.bar: FeatureProgress | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = FeatureProgress(-(-total // self.scale), self.description,
                                       enabled=self.enabled)
        target = self.bar.total if done >= total else done // self.scale
        self.bar(target - self.bar.done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from manylm.errors import InputError
    from manylm.io.convert import convert_matrix
    from manylm.io.text_blocks import is_text_matrix

    if args.row_group_rows is not None and args.row_group_rows < 1:
        raise InputError(f"--row-group-rows must be a positive number of rows, not "
                         f"{args.row_group_rows}")
    text = is_text_matrix(Path(args.input))
    progress = _Progress(f"converting {Path(args.input).name} "
                         f"({'MiB read' if text else 'features'})",
                         _MIB if text else 1, enabled=not args.quiet)
    try:
        with sigterm_as_interrupt():
            summary = convert_matrix(args.input, args.output, dtype=args.dtype,
                                     row_group_rows=args.row_group_rows, progress=progress)
    finally:
        progress.close()
    if not args.quiet:
        unit = "row group" if summary.format == "parquet" else "chunk"
        sys.stdout.write(
            f"wrote {summary.destination}: {summary.n_features:,} features x "
            f"{summary.n_samples:,} samples, {summary.dtype}, {summary.block_rows:,} rows per "
            f"{unit}\n"
        )
    return 0
