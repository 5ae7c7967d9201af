"""Genotypes read a block of variants at a time: dosage matrices, PLINK .bed, VCF/BCF.

:func:`open_genotypes` tells the format from the name and returns a :class:`GenotypeReader`
whose :meth:`~GenotypeReader.blocks` yields :class:`GenotypeBlock` s (variants x samples,
float64 allele dosages, NaN for a missing call), restricted to and ordered like the samples
asked for. Formats:

* dosage matrices, variants in rows and samples in columns: ``.parquet``, ``.zarr``, ``.h5``
  (streamed, :func:`manylm.io.block_sources.open_feature_blocks`), or TSV/CSV (read whole with
  :func:`manylm.io.read_matrix`; convert large ones with ``manylm convert``). They carry no
  positions; give them separately for cis scans.
* PLINK 1 binary (``.bed`` with its ``.bim`` and ``.fam``; the name may be the prefix), read with
  the optional package ``bed-reader``: the dosage is the number of copies of the allele in the
  first allele column of the .bim (A1, as ``plink --recode A``), the sample ID is the .fam's
  IID, positions come from the .bim.
* VCF/BCF (``.vcf``, ``.vcf.gz``, ``.bcf``), read with the optional package ``cyvcf2``: the
  ``DS`` format field when present (``field="DS"``), else the number of non-reference alleles
  of ``GT``; positions come from CHROM/POS. htslib parses it record by record, so it is much
  slower than PLINK or Parquet: convert large files first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.errors import InputError
from manylm.io._ids import duplicated_ids, quote_ids
from manylm.io.block_sources import BlockSourceBase, open_feature_blocks
from manylm.io.feature_blocks import FeatureBlockSource
from manylm.io.matrix import read_matrix

__all__ = ["GENOTYPE_SUFFIXES", "GenotypeBlock", "GenotypeReader", "PlinkBlockSource",
           "open_genotypes"]

#: Name endings :func:`open_genotypes` recognises (besides a PLINK prefix).
GENOTYPE_SUFFIXES: tuple[str, ...] = (
    ".bed", ".vcf", ".vcf.gz", ".bcf", ".parquet", ".zarr", ".h5", ".hdf5",
    ".tsv", ".tsv.gz", ".txt", ".txt.gz", ".csv", ".csv.gz", ".tab", ".tab.gz",
)


@dataclass(frozen=True)
class GenotypeBlock:
    """Variants ``start:start + len(variant_ids)`` of a genotype file.

    Attributes
    ----------
    start : int
    variant_ids : numpy.ndarray of str (object), shape (n_variants,)
    dosages : numpy.ndarray of float64, shape (n_variants, n_samples)
        NaN for a missing call; C-contiguous; samples as requested.
    sample_ids : list of str
    chromosome : numpy.ndarray of object or None, shape (n_variants,)
    position : numpy.ndarray of int64 or None, shape (n_variants,)
    """

    start: int
    variant_ids: NDArray[np.object_]
    dosages: NDArray[np.float64]
    sample_ids: list[str]
    chromosome: NDArray[np.object_] | None = None
    position: NDArray[np.int64] | None = None


class GenotypeReader:
    """A genotype file read a block of variants at a time (see :func:`open_genotypes`).

    Attributes
    ----------
    path : str
    sample_ids : list of str
        Samples in file order.
    n_variants : int or None
        None for VCF/BCF (known only once read).
    kind : str
        ``"dosage"``, ``"plink"`` or ``"vcf"``: hard calls from PLINK and VCF are in [0, 2] by
        construction, dosage matrices are checked.
    has_positions : bool
    """

    path: str
    sample_ids: list[str]
    n_variants: int | None
    kind: str
    has_positions: bool = False

    def blocks(self, rows: int, samples: Sequence[str] | None = None
               ) -> Iterator[GenotypeBlock]:
        """Consecutive blocks of ``rows`` variants, columns in the order of ``samples``."""
        raise NotImplementedError

    def _positions(self, samples: Sequence[str] | None) -> NDArray[np.intp] | None:
        if samples is None:
            return None
        index = {s: i for i, s in enumerate(self.sample_ids)}
        missing = [str(s) for s in samples if str(s) not in index]
        if missing:
            raise InputError(
                f"{self.path}: {len(missing)} sample(s) have no genotypes: "
                f"{quote_ids(missing, 10)}; the file has {len(self.sample_ids)} samples "
                f"({quote_ids(self.sample_ids, 3)}). Remove those samples from the phenotypes "
                "(or the sample sheet), or check the sample IDs"
            )
        return np.fromiter((index[str(s)] for s in samples), dtype=np.intp, count=len(samples))


class _MatrixGenotypes(GenotypeReader):
    """A dosage matrix: a streamed block source, or a DataFrame in memory."""

    kind = "dosage"

    def __init__(self, source: FeatureBlockSource | pd.DataFrame, path: str) -> None:
        self.path = path
        self._source = source
        if isinstance(source, pd.DataFrame):
            self.sample_ids = [str(s) for s in source.columns]
            self.n_variants = int(source.shape[0])
        else:
            self.sample_ids = list(source.sample_ids)
            self.n_variants = int(source.n_features)

    def blocks(self, rows: int, samples: Sequence[str] | None = None
               ) -> Iterator[GenotypeBlock]:
        positions = self._positions(samples)
        chosen = self.sample_ids if positions is None else [self.sample_ids[i] for i in positions]
        if isinstance(self._source, pd.DataFrame):
            values = self._source.to_numpy(dtype=np.float64)
            ids = np.asarray(self._source.index.astype(str), dtype=object)
            for start in range(0, values.shape[0], rows):
                part = values[start:start + rows]
                part = part if positions is None else part[:, positions]
                yield GenotypeBlock(start, ids[start:start + rows],
                                    np.ascontiguousarray(part), chosen)
            return
        for block in self._source.blocks(rows, samples=None if samples is None else chosen):
            yield GenotypeBlock(block.start, block.feature_ids,
                                np.ascontiguousarray(block.values, dtype=np.float64), chosen)


class PlinkBlockSource(BlockSourceBase):
    """A PLINK 1 .bed/.bim/.fam fileset as a block source (variants x samples dosages).

    Parameters
    ----------
    path : str or path-like
        The ``.bed`` file (``.bim`` and ``.fam`` beside it, same prefix).

    Attributes
    ----------
    path, sample_ids, n_features, dtype, natural_block_rows
        See :class:`~manylm.io.feature_blocks.FeatureBlockSource`; dtype is float64.
    chromosome : numpy.ndarray of object, shape (n_features,)
    position : numpy.ndarray of int64, shape (n_features,)
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        bed = self._open()
        try:
            self.sample_ids = np.asarray(bed.iid).astype(str).tolist()
            self._variant_ids = np.asarray(bed.sid).astype(str).astype(object)
            self.chromosome = np.asarray(bed.chromosome).astype(str).astype(object)
            self.position = np.asarray(bed.bp_position, dtype=np.int64)
        except Exception as error:  # any parsing failure of .fam/.bim
            raise InputError(f"{self.path}: cannot read the .fam/.bim beside it: {error}; "
                             "check that the fileset is complete and well formed") from error
        repeated = duplicated_ids(self.sample_ids)
        if repeated:
            raise InputError(f"{self.path}: sample IDs (IID) repeated in the .fam: "
                             f"{quote_ids(repeated, 10)}; each sample needs a distinct IID")
        self.n_features = len(self._variant_ids)
        self.dtype = np.dtype(np.float64)
        self.natural_block_rows = 1024

    def _open(self) -> Any:
        try:
            from bed_reader import open_bed
        except ImportError as error:
            raise InputError(
                f"{self.path}: reading PLINK .bed files needs the optional package bed-reader "
                "(pip install 'manylm[genotypes]'), or convert the genotypes to a dosage matrix"
            ) from error
        state = self._state()
        bed = getattr(state, "bed", None)
        if bed is None:
            try:
                bed = open_bed(self.path, num_threads=1)
            except Exception as error:  # bed-reader raises several kinds
                raise InputError(f"{self.path}: cannot open the PLINK fileset: {error}") from error
            state.bed = bed
        return bed

    def _read_rows(self, start: int, stop: int, positions: NDArray[np.intp] | None,
                   order: str = "C", buffer: NDArray[np.floating] | None = None
                   ) -> tuple[NDArray[np.object_], NDArray[np.floating]]:
        bed = self._open()  # read as samples x variants in Fortran order: C once transposed
        samples = slice(None) if positions is None else positions
        try:
            values = bed.read(index=np.s_[samples, start:stop], dtype="float64", order="F")
        except Exception as error:  # a truncated or corrupt .bed
            raise self._corrupt("variants", start, stop, error) from error
        return self._variant_ids[start:stop], values.T


class _PlinkGenotypes(GenotypeReader):
    kind = "plink"
    has_positions = True

    def __init__(self, path: str) -> None:
        self.source = PlinkBlockSource(path)
        self.path = self.source.path
        self.sample_ids = self.source.sample_ids
        self.n_variants = self.source.n_features

    def blocks(self, rows: int, samples: Sequence[str] | None = None
               ) -> Iterator[GenotypeBlock]:
        chosen = list(self.sample_ids if samples is None else samples)
        self._positions(chosen)  # names the missing samples
        for block in self.source.blocks(rows, samples=chosen):
            part = slice(block.start, block.stop)
            yield GenotypeBlock(block.start, block.feature_ids,
                                np.asarray(block.values, dtype=np.float64), chosen,
                                self.source.chromosome[part], self.source.position[part])


class _VcfGenotypes(GenotypeReader):
    kind = "vcf"
    has_positions = True

    def __init__(self, path: str, field: str = "DS") -> None:
        self.path = path
        self.field = field
        reader = self._open(None)
        self.sample_ids = [str(s) for s in reader.samples]
        reader.close()
        self.n_variants = None

    def _open(self, samples: Sequence[str] | None) -> Any:
        try:
            from cyvcf2 import VCF
        except ImportError as error:
            raise InputError(
                f"{self.path}: reading VCF/BCF needs the optional package cyvcf2 "
                "(pip install 'manylm[genotypes]'), or convert the genotypes to PLINK or Parquet"
            ) from error
        try:
            return VCF(self.path, gts012=True, lazy=True,
                       samples=None if samples is None else list(samples))
        except Exception as error:  # htslib errors
            raise InputError(f"{self.path}: cannot open the VCF/BCF: {error}") from error

    def blocks(self, rows: int, samples: Sequence[str] | None = None
               ) -> Iterator[GenotypeBlock]:
        chosen = list(self.sample_ids if samples is None else samples)
        self._positions(chosen)
        reader = self._open(chosen)
        field = self.field if self.field and _declares(reader, self.field) else None
        file_order = [str(s) for s in reader.samples]
        order = pd.Index(file_order).get_indexer(pd.Index(chosen))
        start = 0
        ids: list[str] = []
        chromosomes: list[str] = []
        positions: list[int] = []
        values: list[NDArray[np.float64]] = []
        try:
            for record in reader:
                dosage = record.format(field) if field else None
                if dosage is not None:
                    row = np.asarray(dosage[:, 0], dtype=np.float64)
                    row[row < -1e30] = np.nan  # htslib's missing float
                else:
                    calls = np.asarray(record.gt_types, dtype=np.float64)
                    row = np.where(calls == 3, np.nan, calls)
                values.append(row[order])
                ids.append(record.ID or f"{record.CHROM}:{record.POS}")
                chromosomes.append(record.CHROM)
                positions.append(record.POS)
                if len(ids) == rows:
                    yield self._block(start, ids, values, chosen, chromosomes, positions)
                    start += len(ids)
                    ids, values, chromosomes, positions = [], [], [], []
        finally:
            reader.close()
        if ids:
            yield self._block(start, ids, values, chosen, chromosomes, positions)

    @staticmethod
    def _block(start: int, ids: list[str], values: list[NDArray[np.float64]], samples: list[str],
               chromosomes: list[str], positions: list[int]) -> GenotypeBlock:
        return GenotypeBlock(start, np.asarray(ids, dtype=object), np.vstack(values), samples,
                             np.asarray(chromosomes, dtype=object),
                             np.asarray(positions, dtype=np.int64))


def _declares(reader: Any, field: str) -> bool:
    """Whether the VCF header declares the FORMAT field (reading an undeclared one fails)."""
    try:
        reader.get_header_type(field)
    except KeyError:
        return False
    return True


def open_genotypes(genotypes: str | os.PathLike[str] | pd.DataFrame, *,
                   vcf_field: str = "DS") -> GenotypeReader:
    """Open genotypes to read them a block of variants at a time.

    Parameters
    ----------
    genotypes : str, path-like or pandas.DataFrame
        A file (see the module for the formats) or a variants x samples DataFrame of dosages.
    vcf_field : str
        VCF format field holding dosages (falls back to GT when a record lacks it).

    Returns
    -------
    GenotypeReader

    Raises
    ------
    InputError
        If the file does not exist, its format is not recognised, or an optional reader is
        not installed.
    """
    if isinstance(genotypes, pd.DataFrame):
        return _MatrixGenotypes(genotypes, "the genotype DataFrame")
    label = os.fspath(genotypes)
    p = Path(label)
    name = p.name.lower()
    if not p.exists() and Path(label + ".bed").exists():
        return _PlinkGenotypes(label + ".bed")
    if not p.exists():
        raise InputError(f"{label}: genotype file not found (looked in {p.absolute().parent}); "
                         "check the path")
    if name.endswith(".bed"):
        return _PlinkGenotypes(label)
    if name.endswith((".vcf", ".vcf.gz", ".bcf")):
        return _VcfGenotypes(label, vcf_field)
    if name.rstrip("/").endswith((".parquet", ".zarr", ".h5", ".hdf5")):
        return _MatrixGenotypes(open_feature_blocks(label), label)
    if name.endswith(tuple(s for s in GENOTYPE_SUFFIXES if s.startswith((".t", ".c")))):
        return _MatrixGenotypes(read_matrix(label, kind="genotype"), label)
    raise InputError(
        f"{label}: cannot tell the genotype format from the name; supported: "
        f"{', '.join(GENOTYPE_SUFFIXES)} (.zarr is a directory), or a PLINK prefix"
    )
