"""Streaming the passing pairs to a table: spooled while scanning, adjusted and written at the end.

The adjusted p-value of a pair needs every written p-value of its family, so blocks of pairs
are first appended to an uncompressed Arrow IPC spool (a hidden file beside the output), with
their p-values kept in memory. At the end the Benjamini-Hochberg values are computed per
family (cis, trans) and the spool is read back a batch at a time into the output: Parquet
through ``pyarrow.parquet.ParquetWriter`` (manylm's Parquet options) or TSV/CSV (optionally
gzipped) through ``pyarrow.csv.CSVWriter``. The output is written to a temporary name and
renamed when complete (:func:`manylm.io.atomic_path`); on any error or interrupt the spool and
the temporary file are removed and an existing output is left untouched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from numpy.typing import NDArray

from manylm.io import atomic_path, check_table_path
from manylm.io.formats import FileFormat
from manylm.io.tables import opened_table_file, parquet_write_options
from manylm.qtl.fdr import bh_adjust_written

__all__ = ["REGIONS", "PairWriter", "table_columns"]

REGIONS: tuple[str, ...] = ("trans", "cis")


def table_columns(model: str, with_region: bool) -> list[str]:
    """The columns of the output table."""
    columns = ["variant", "phenotype", "beta", "se", "t"]
    if model == "anova":
        columns += ["F", "df_genotype"]
    columns += ["p_value", "adj_p_value"]
    return columns + (["region"] if with_region else [])


class PairWriter:
    """Collects blocks of pairs and writes the final table (see the module).

    Parameters
    ----------
    path : str, path-like or None
        Output table (``.parquet``, ``.tsv``, ``.csv``, optionally ``.gz``); None keeps the
        pairs in memory and :meth:`finish` returns a DataFrame.
    model : str
    with_region : bool
        Whether to add the ``region`` column (cis scans).

    Use as a context manager: leaving it without :meth:`finish` (an error) removes the spool.
    """

    def __init__(self, path: str | os.PathLike[str] | None, model: str,
                 with_region: bool) -> None:
        self.path = None if path is None else os.fspath(path)
        self.format: FileFormat | None = None if path is None else check_table_path(path)
        self.model = model
        self.with_region = with_region
        self._p: list[NDArray[np.float64]] = []
        self._region: list[NDArray[np.int8]] = []
        self._batches: list[pa.RecordBatch] = []
        self._spool_path: Path | None = None
        self._spool: Any = None
        self._region_all = np.zeros(0, np.int8)
        self.n_written = 0

    def __enter__(self) -> PairWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._close_spool(remove=True)

    def add(self, variant_ids: NDArray[np.object_], phenotype_index: NDArray[np.intp],
            statistics: dict[str, NDArray[np.float64]], region: int,
            df_genotype: NDArray[np.int64] | None = None) -> None:
        """Append pairs of one family (``region``: 0 trans, 1 cis)."""
        n = len(phenotype_index)
        if n == 0:
            return
        columns: dict[str, pa.Array] = {
            "variant": pa.array(variant_ids, type=pa.string()),
            "phenotype": pa.array(np.asarray(phenotype_index, dtype=np.int64)),
            "beta": pa.array(statistics["beta"], from_pandas=True),
            "se": pa.array(statistics["se"], from_pandas=True),
            "t": pa.array(statistics["t"], from_pandas=True),
        }
        if self.model == "anova":
            columns["F"] = pa.array(statistics["F"], from_pandas=True)
            columns["df_genotype"] = pa.array(np.asarray(df_genotype, dtype=np.int64))
        columns["p_value"] = pa.array(statistics["p_value"], from_pandas=True)
        batch = pa.RecordBatch.from_pydict(columns)
        self._p.append(np.asarray(statistics["p_value"], dtype=np.float64))
        self._region.append(np.full(n, region, dtype=np.int8))
        self.n_written += n
        if self.path is None:
            self._batches.append(batch)
            return
        if self._spool is None:
            target = Path(self.path)
            self._spool_path = target.parent / f".{target.name}.spool-{secrets.token_hex(6)}"
            self._spool = pa.ipc.new_file(str(self._spool_path), batch.schema)
        self._spool.write_batch(batch)

    def finish(self, phenotype_ids: NDArray[np.object_], n_tests: dict[str, int]
               ) -> pd.DataFrame | None:
        """Adjust the p-values per family and write (or return) the table.

        Parameters
        ----------
        phenotype_ids : array of str, shape (n_phenotypes,)
        n_tests : dict
            Tests performed per family: ``{"trans": m_trans, "cis": m_cis}``.
        """
        p = np.concatenate(self._p) if self._p else np.zeros(0)
        region = np.concatenate(self._region) if self._region else np.zeros(0, np.int8)
        adjusted = np.empty(len(p))
        for code, name in enumerate(REGIONS):
            members = region == code
            if members.any():
                adjusted[members] = bh_adjust_written(p[members], n_tests.get(name, 0))
        ids = pa.array(np.asarray(phenotype_ids, dtype=object), type=pa.string())
        self._region_all = region
        if self.path is None:
            frames = [self._final(b, ids, adjusted, offset)
                      for b, offset in zip(self._batches, _offsets(self._batches), strict=True)]
            schema = self._final_schema()
            table = pa.Table.from_batches(frames, schema=schema)
            return table.to_pandas()
        self._close_spool(remove=False)
        with atomic_path(self.path) as tmp:
            self._write(tmp, ids, adjusted)
        self._close_spool(remove=True)
        return None

    # ------------------------------------------------------------------ internals

    def _final_schema(self) -> pa.Schema:
        fields = [pa.field("variant", pa.string()), pa.field("phenotype", pa.string())]
        for name in table_columns(self.model, self.with_region)[2:]:
            if name == "df_genotype":
                fields.append(pa.field(name, pa.int64()))
            elif name == "region":
                fields.append(pa.field(name, pa.string()))
            else:
                fields.append(pa.field(name, pa.float64()))
        return pa.schema(fields)

    def _final(self, batch: pa.RecordBatch, ids: pa.Array, adjusted: NDArray[np.float64],
               offset: int) -> pa.RecordBatch:
        n = batch.num_rows
        columns = {name: batch.column(name) for name in batch.schema.names}
        columns["phenotype"] = ids.take(columns["phenotype"])
        columns["adj_p_value"] = pa.array(adjusted[offset:offset + n], from_pandas=True)
        if self.with_region:
            codes = self._region_all[offset:offset + n]
            columns["region"] = pa.array(np.asarray(REGIONS, dtype=object)[codes],
                                         type=pa.string())
        names = table_columns(self.model, self.with_region)
        return pa.RecordBatch.from_arrays([columns[c] for c in names], schema=self._final_schema())

    def _write(self, tmp: Path, ids: pa.Array, adjusted: NDArray[np.float64]) -> None:
        schema = self._final_schema()
        batches = self._read_spool()
        assert self.format is not None
        if self.format.name == "parquet":
            with (opened_table_file(tmp, self.format) as sink,
                  pq.ParquetWriter(sink, schema, **parquet_write_options(schema)) as writer):
                for batch, offset in batches:
                    writer.write_batch(self._final(batch, ids, adjusted, offset))
                if self.n_written == 0:
                    writer.write_table(schema.empty_table())
            return
        assert self.format.delimiter is not None
        quoting = "needed" if self._needs_quotes(ids, self.format.delimiter) else "none"
        options = pacsv.WriteOptions(delimiter=self.format.delimiter, null_string="NA",
                                     quoting_style=quoting, quoting_header=quoting)
        with (opened_table_file(tmp, self.format) as sink,
              pacsv.CSVWriter(sink, schema, write_options=options) as writer):
            for batch, offset in batches:
                writer.write_batch(self._final(batch, ids, adjusted, offset))

    def _needs_quotes(self, ids: pa.Array, delimiter: str) -> bool:
        """Whether an ID holds the delimiter, a quote or a line break (else nothing is quoted)."""
        special = f'[{delimiter}"\r\n]'
        if len(ids) and pc.any(pc.match_substring_regex(ids, special)).as_py():
            return True
        return any(pc.any(pc.match_substring_regex(batch.column("variant"), special)).as_py()
                   for batch, _ in self._read_spool())

    def _read_spool(self) -> Any:
        if self._spool_path is None:
            return
        with pa.memory_map(str(self._spool_path)) as source:
            reader = pa.ipc.open_file(source)
            offset = 0
            for i in range(reader.num_record_batches):
                batch = reader.get_batch(i)
                yield batch, offset
                offset += batch.num_rows

    def _close_spool(self, remove: bool) -> None:
        if self._spool is not None:
            with contextlib.suppress(Exception):
                self._spool.close()
            self._spool = None
        if remove and self._spool_path is not None:
            with contextlib.suppress(OSError):
                self._spool_path.unlink()
            self._spool_path = None


def _offsets(batches: list[pa.RecordBatch]) -> list[int]:
    sizes = [b.num_rows for b in batches]
    return [int(x) for x in np.concatenate([[0], np.cumsum(sizes)[:-1]])] if sizes else []
