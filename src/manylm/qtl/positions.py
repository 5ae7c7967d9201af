"""Genomic positions of variants and phenotypes, from tables with the usual column names.

A positions table is indexed by ID (variant or phenotype) and has a chromosome column
(``chrom``, ``chr``, ``chromosome``, ``#chr``, ``CHROM``) and a position column (``pos``,
``position``, ``start``, ``tss``, ``bp``, ``s1``); for phenotypes the position is the start
(or TSS). Matrix eQTL's ``snpsloc.txt`` / ``geneloc.txt`` and a BED file saved as TSV with the
ID in the first column all fit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.errors import InputError
from manylm.qtl.cis import ChromosomeCodes

__all__ = ["CHROMOSOME_COLUMNS", "POSITION_COLUMNS", "locate", "normalize_positions"]

CHROMOSOME_COLUMNS: tuple[str, ...] = ("chrom", "chr", "chromosome", "#chr", "#chrom", "seqnames")
POSITION_COLUMNS: tuple[str, ...] = ("pos", "position", "start", "tss", "bp", "s1",
                                     "bp_position")


def normalize_positions(table: pd.DataFrame, what: str) -> pd.DataFrame:
    """The table reduced to columns ``chromosome`` (str) and ``position`` (int64).

    Parameters
    ----------
    table : pandas.DataFrame
        Indexed by ID.
    what : str
        What the table describes, for messages (``"phenotype positions (genes.tsv)"``).

    Raises
    ------
    InputError
        If a column is missing, a position is not a whole number, or an ID is repeated.
    """
    lower = {str(c).lower(): c for c in table.columns}
    chromosome = next((lower[c] for c in CHROMOSOME_COLUMNS if c in lower), None)
    position = next((lower[c] for c in POSITION_COLUMNS if c in lower), None)
    if chromosome is None or position is None:
        raise InputError(
            f"{what}: needs a chromosome column (one of {', '.join(CHROMOSOME_COLUMNS)}) and a "
            f"position column (one of {', '.join(POSITION_COLUMNS)}); it has "
            f"{', '.join(map(str, table.columns))}"
        )
    values = pd.to_numeric(table[position], errors="coerce")
    bad = values.isna() | (values != np.round(values)) | (values < 0)
    if bad.any():
        first = table.index[np.flatnonzero(bad.to_numpy())[0]]
        raise InputError(f"{what}: {int(bad.sum())} position(s) are not whole non-negative "
                         f"numbers (first: {first!r}: {table[position].loc[first]!r})")
    index = table.index.astype(str)
    if index.has_duplicates:
        repeated = index[index.duplicated()].unique()[:10]
        raise InputError(f"{what}: IDs repeated: {', '.join(map(repr, repeated))}; give one "
                         "position per ID")
    return pd.DataFrame({"chromosome": table[chromosome].astype(str).to_numpy(),
                         "position": values.to_numpy(dtype=np.int64)}, index=index)


def locate(ids: NDArray[np.object_] | list[str], positions: pd.DataFrame,
           codes: ChromosomeCodes) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Chromosome codes (-1 when unknown) and positions (0 when unknown) of ``ids``."""
    where = positions.index.get_indexer(pd.Index(np.asarray(ids, dtype=object)).astype(str))
    found = where >= 0
    chromosome = np.full(len(where), -1, dtype=np.int64)
    position = np.zeros(len(where), dtype=np.int64)
    if found.any():
        chromosome[found] = codes.encode(positions["chromosome"].to_numpy()[where[found]])
        position[found] = positions["position"].to_numpy()[where[found]]
    return chromosome, position
