#!/usr/bin/env python
"""Generate a synthetic features x samples matrix as Parquet and Zarr, streaming.

Run from the repository root::

    python bench/make_synthetic.py --features 1000000            # 1M x 100 float32 (400 MB each)
    python bench/make_synthetic.py --features 10000000           # 10M x 100 float32 (4 GB each)
    python bench/make_synthetic.py --features 100000 --formats parquet --samples 200

The matrix is generated and written one block of rows at a time (a Parquet row group / a Zarr
chunk, about 32 MB), so memory stays at a few blocks whatever the number of features. Each
block comes from its own random stream (seed, block index), so a file is the same whatever the
formats asked for. Files go to ``bench/data/`` (git-ignored), named ``synthetic_<N>`` +
``.parquet`` / ``.zarr`` / ``_samples.tsv`` / ``_truth.tsv``:

* samples: ``s001``... with ``group`` (A/B alternating), ``batch`` (b1-b4, balanced across
  groups) and ``age`` (uniform 20-80);
* values: ``Y = 8 + batch shift + noise``, the noise variance of each feature from a scaled
  inverse chi-square (d0 = 4, s0^2 = 0.05, limma's model), a batch shift N(0, 0.3^2) per
  feature and batch, and on 1% of the features (listed in ``_truth.tsv``) a true group effect
  of +-U(0.5, 2) on the B samples; 0.1% of the cells missing (NaN) unless ``--no-missing``;
* feature IDs ``f00000001``...

The free space of the output directory is checked before writing. Outputs are written under
temporary names and renamed when complete.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from manylm.io.block_sources import block_rows_for_bytes
from manylm.io.parquet_blocks import ParquetMatrixWriter
from manylm.io.zarr_blocks import ZarrMatrixWriter

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / "data"
SEED = 20261121
TRUE_FRACTION = 0.01
MISSING_FRACTION = 0.001


def size_label(n: int) -> str:
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def make_samples(n_samples: int, rng: np.random.Generator) -> pd.DataFrame:
    group = np.where(np.arange(n_samples) % 2 == 0, "A", "B")
    batch = np.array([f"b{1 + (i // 2) % 4}" for i in range(n_samples)])
    index = pd.Index([f"s{i + 1:03d}" for i in range(n_samples)], name="sample")
    return pd.DataFrame({"group": group, "batch": batch,
                         "age": np.round(rng.uniform(20, 80, n_samples), 1)}, index=index)


def make_block(first: int, n_rows: int, samples: pd.DataFrame, block_index: int,
               missing: bool, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows first:first + n_rows: IDs, values (n_rows x n_samples) and the true effects."""
    rng = np.random.default_rng([SEED, block_index])
    n_samples = len(samples)
    d0, s0_squared = 4.0, 0.05
    sd = np.sqrt(d0 * s0_squared / rng.chisquare(d0, n_rows)).astype(dtype)
    values = rng.standard_normal((n_rows, n_samples), dtype=np.float32).astype(dtype, copy=False)
    values *= sd[:, None]
    values += dtype.type(8.0)
    batch_codes = pd.Categorical(samples["batch"]).codes
    shifts = rng.normal(0.0, 0.3, (n_rows, batch_codes.max() + 1)).astype(dtype)
    values += shifts[:, batch_codes]
    effect = np.zeros(n_rows, dtype=dtype)
    true_rows = np.flatnonzero(rng.random(n_rows) < TRUE_FRACTION)
    effect[true_rows] = (rng.choice([-1.0, 1.0], len(true_rows))
                         * rng.uniform(0.5, 2.0, len(true_rows)))
    b_columns = np.flatnonzero(samples["group"].to_numpy() == "B")
    values[np.ix_(true_rows, b_columns)] += effect[true_rows, None]
    if missing:
        values[rng.random(values.shape) < MISSING_FRACTION] = np.nan
    ids = np.char.add("f", np.char.zfill(np.arange(first + 1, first + n_rows + 1).astype(str), 8))
    return ids.astype(object), values, effect


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--formats", default="parquet,zarr",
                        help="comma-separated: parquet, zarr (default both)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--no-missing", action="store_true", help="no NaN cells")
    parser.add_argument("--out-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)

    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = set(formats) - {"parquet", "zarr"}
    if unknown:
        parser.error(f"unknown formats {sorted(unknown)}; use parquet and/or zarr")
    dtype = np.dtype(args.dtype)
    n, n_samples = args.features, args.samples
    args.out_dir.mkdir(parents=True, exist_ok=True)
    needed = int(n * n_samples * dtype.itemsize * len(formats) * 1.05) + (1 << 30)
    free = shutil.disk_usage(args.out_dir).free
    if free < needed:
        print(f"error: {args.out_dir} has {free / 1e9:.1f} GB free; {needed / 1e9:.1f} GB needed "
              f"(the matrix in {len(formats)} format(s) plus 1 GB to spare)", file=sys.stderr)
        return 2

    stem = args.out_dir / f"synthetic_{size_label(n)}"
    samples = make_samples(n_samples, np.random.default_rng(SEED))
    block_rows = block_rows_for_bytes(n_samples, dtype.itemsize)
    print(f"workload: {n:,} features x {n_samples} samples, {dtype.name}, "
          f"{n * n_samples * dtype.itemsize / 1e9:.2f} GB of values per format; blocks of "
          f"{block_rows:,} rows; formats {', '.join(formats)}; into {args.out_dir}")

    temporaries = {f: stem.parent / f".{stem.name}.{f}.tmp-{os.getpid()}" for f in formats}
    truth_parts = []
    writers: list[ParquetMatrixWriter | ZarrMatrixWriter] = []
    started = time.perf_counter()
    try:
        for f in formats:
            cls = ParquetMatrixWriter if f == "parquet" else ZarrMatrixWriter
            writers.append(cls(temporaries[f], list(samples.index), dtype, block_rows))
        for block_index, first in enumerate(range(0, n, block_rows)):
            n_rows = min(block_rows, n - first)
            ids, values, effect = make_block(first, n_rows, samples, block_index,
                                             not args.no_missing, dtype)
            for writer in writers:
                writer.write(ids, values)
            nonzero = np.flatnonzero(effect)
            truth_parts.append(pd.DataFrame({"feature": ids[nonzero], "effect": effect[nonzero]}))
            done = first + n_rows
            if block_index % 20 == 0 or done == n:
                rate = done / (time.perf_counter() - started)
                print(f"  {done:,} rows ({rate:,.0f} rows/s)", file=sys.stderr, flush=True)
        for writer in writers:
            writer.close()
        for f in formats:
            final = stem.with_suffix(f".{f}")
            if final.is_dir():
                shutil.rmtree(final)
            os.replace(temporaries[f], final)
    finally:
        for path in temporaries.values():
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()
    samples.to_csv(f"{stem}_samples.tsv", sep="\t")
    pd.concat(truth_parts).to_csv(f"{stem}_truth.tsv", sep="\t", index=False)
    elapsed = time.perf_counter() - started
    for f in formats:
        final = stem.with_suffix(f".{f}")
        size = (sum(p.stat().st_size for p in final.rglob("*") if p.is_file())
                if final.is_dir() else final.stat().st_size)
        print(f"wrote {final} ({size / 1e9:.2f} GB)")
    print(f"wrote {stem}_samples.tsv, {stem}_truth.tsv; {elapsed:.1f} s "
          f"({n / elapsed:,.0f} rows/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
