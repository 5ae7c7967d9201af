"""Build manylm's bundled example data from the shared bladderbatch files.

Reads ``../shared/data/bladderbatch/expression.tsv.gz`` and ``samples.tsv`` (relative to the
repository root) and writes into ``src/manylm/data/``:

- ``bladderbatch_expression.parquet``: the expression matrix, first column ``feature``
  (string), then one float32 column per sample, zstd-compressed;
- ``bladderbatch_samples.tsv``: the sample sheet, copied unchanged.

Usage::

    python tools/make_example_data.py [--source DIR] [--dest DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "bladderbatch"
DEFAULT_DEST = ROOT / "src" / "manylm" / "data"
N_FEATURES, N_SAMPLES = 22_283, 57


def convert_expression(source: Path, dest: Path) -> pa.Table:
    """Convert the expression TSV to float32 Parquet; return the table written."""
    with pacsv.open_csv(source, parse_options=pacsv.ParseOptions(delimiter="\t")) as reader:
        names = reader.schema.names
    if names[0] != "feature":
        raise SystemExit(f"{source}: first column is {names[0]!r}, expected 'feature'")
    types = {name: pa.float32() for name in names[1:]}
    types["feature"] = pa.string()
    table = pacsv.read_csv(
        source,
        parse_options=pacsv.ParseOptions(delimiter="\t"),
        convert_options=pacsv.ConvertOptions(
            column_types=types, null_values=["", "NA", "NaN", "nan"], strings_can_be_null=False
        ),
    )
    if (table.num_rows, table.num_columns - 1) != (N_FEATURES, N_SAMPLES):
        raise SystemExit(f"{source}: unexpected shape {table.num_rows} x {table.num_columns - 1}")
    values = np.column_stack([table.column(k).to_numpy() for k in range(1, table.num_columns)])
    if not np.isfinite(values).all():
        raise SystemExit(f"{source}: missing or infinite values; the example should have none")
    pq.write_table(
        table,
        dest,
        compression="zstd",
        compression_level=19,
        use_byte_stream_split=names[1:],
        use_dictionary=["feature"],
    )
    return table


def main(argv: list[str] | None = None) -> int:
    """Run the conversion; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    args = parser.parse_args(argv)
    args.dest.mkdir(parents=True, exist_ok=True)
    expression = args.dest / "bladderbatch_expression.parquet"
    samples = args.dest / "bladderbatch_samples.tsv"
    convert_expression(args.source / "expression.tsv.gz", expression)
    shutil.copyfile(args.source / "samples.tsv", samples)
    for path in (expression, samples):
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
